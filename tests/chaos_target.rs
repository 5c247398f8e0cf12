//! `grace chaos run --target` end to end: the real binary against a real `grace serve`
//! on loopback; the report, the exit status, aborts, unsupported targets, and Ctrl-C
//! undoing a siege.

mod chaos_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use chaos_support::{grace, report, run_against, scenario, wait_for, Serve};

#[test]
fn api_faults_are_injected_measured_and_reported() {
    let serve = Serve::start();
    let out = serve.dir.path().join("report");
    let s = scenario(
        serve.dir.path(),
        "api",
        r#"
name: api_faults
steady_state:
  - health_ok
  - http_get: { path: /api/kernels, status: 200 }
faults:
  - at: 100ms
    fault: latency
    ms: 300
    duration: 500ms
  - at: 200ms
    fault: error_burst
    count: 5
slo: { max_recovery: 10s }
timeout: 5s
poll: 20ms
"#,
    );
    let o = run_against(&serve, &s, &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("api_faults") && stdout.contains("PASS"),
        "{stdout}"
    );
    assert!(stdout.contains("latency(300 ms)"), "{stdout}");
    let r = report(&out);
    assert_eq!(r["passed"], true);
    let sc = &r["scenarios"][0];
    assert_eq!(sc["target"], serve.url());
    let faults = sc["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 2);
    let lat = &faults[0];
    let injected = lat["injected_at"].as_f64().expect("injected");
    let ended = lat["ended_at"].as_f64().expect("ended");
    assert!(
        (0.09..1.0).contains(&injected),
        "latency injected at {injected}"
    );
    assert!(
        ended - injected >= 0.49,
        "the latency lasted its duration: {injected}..{ended}"
    );
    assert!(lat["recovery"].as_f64().expect("recovered") <= 10.0);
    assert_eq!(sc["steady_restored"], true);
    assert!(out.join("api_faults.svg").is_file());
    assert!(out.join("summary.txt").is_file());
}

#[test]
fn a_crash_nobody_repairs_aborts_and_fails() {
    let mut serve = Serve::start();
    let out = serve.dir.path().join("report");
    let s = scenario(
        serve.dir.path(),
        "crash",
        r#"
name: unrepaired_crash
steady_state: [health_ok]
faults:
  - fault: sigkill
    process: serve
slo: { max_recovery: 30s }
abort:
  - { probe: health_ok, failing_for: 1s }
poll: 20ms
"#,
    );
    let started = Instant::now();
    let o = run_against(&serve, &s, &out);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the abort bound ended it"
    );
    assert!(!serve.running(), "serve was killed");
    let sc = &report(&out)["scenarios"][0];
    let aborted = sc["aborted"].as_str().expect("aborted");
    assert!(aborted.contains("health_ok"), "{aborted}");
    assert_eq!(sc["passed"], false);
    assert_eq!(sc["score"], 0);
    assert_eq!(sc["steady_restored"], false);
}

#[test]
fn a_missing_fault_target_is_reported_as_unsupported() {
    let serve = Serve::start();
    let out = serve.dir.path().join("report");
    let s = scenario(
        serve.dir.path(),
        "corrupt",
        r#"
name: no_snapshot
faults:
  - fault: corrupt
    file: "snapshots/nothing/*"
slo: { max_recovery: 5s }
timeout: 2s
"#,
    );
    let o = run_against(&serve, &s, &out);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("unsupported fault target"), "{stdout}");
    let sc = &report(&out)["scenarios"][0];
    let err = sc["faults"][0]["error"].as_str().expect("error");
    assert!(err.contains("snapshots/nothing/*"), "{err}");
}

fn siege_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains("disk-siege"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn ctrl_c_undoes_a_siege_and_exits_non_zero() {
    let serve = Serve::start();
    let s = scenario(
        serve.dir.path(),
        "siege",
        r#"
name: long_siege
faults:
  - fault: disk_siege
    level: 99
    max_mib: 4
    duration: 60s
slo: { max_recovery: 5s }
"#,
    );
    let mut child = grace()
        .args(["--state-dir"])
        .arg(serve.state())
        .args(["chaos", "run"])
        .arg(&s)
        .args(["--target", &serve.url()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run");
    wait_for(Duration::from_secs(20), "the siege file", || {
        siege_files(&serve.state()) == 1
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("exit");
    assert_eq!(status.code(), Some(130));
    assert_eq!(siege_files(&serve.state()), 0, "the siege file was removed");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
        .expect("read");
    assert!(stdout.contains("interrupted"), "{stdout}");
}

#[test]
fn list_and_bad_scenarios() {
    let o = grace().args(["chaos", "list"]).output().expect("list");
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for name in ["DIRT01", "DIRT02", "DIRT03", "process_crash", "kill_switch"] {
        assert!(text.contains(name), "{text}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let bad = scenario(
        dir.path(),
        "bad",
        "name: b\nfaults:\n  - fault: kill_kernel\nslo: { max_recovery: 1s }\n",
    );
    let o = grace()
        .args(["chaos", "run"])
        .arg(&bad)
        .arg("--spawn")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "a bad scenario is a usage error");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml, line 3") && err.contains("needs `kernel`"),
        "{err}"
    );
    let o = grace()
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["chaos", "run", "dirt01"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "no target");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--spawn"));
}
