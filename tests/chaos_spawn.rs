//! `grace chaos run --spawn` end to end: the harness starts its own `grace watch` over
//! `grace serve --port 0` in a temporary directory, injects, measures, reports, and
//! leaves no process and no directory behind.

mod chaos_support;

use std::path::PathBuf;
use std::process::Stdio;

use chaos_support::grace;

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purpose: it holds nothing and runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

fn instance_dirs(harness: u32) -> Vec<PathBuf> {
    let prefix = format!("grace-chaos-{harness}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn process_crash_is_repaired_by_the_watchdog_and_nothing_is_left_behind() {
    let out = tempfile::tempdir().expect("tmp");
    let child = grace()
        .args(["chaos", "run", "process_crash", "--spawn", "--report"])
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grace chaos run");
    let harness = child.id();
    let o = child.wait_with_output().expect("finished");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("process_crash") && stdout.contains("PASS"),
        "{stdout}"
    );

    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).expect("report"))
            .expect("json");
    let sc = &r["scenarios"][0];
    assert_eq!(sc["target"], "spawned");
    let f = &sc["faults"][0];
    assert_eq!(f["label"], "sigkill(serve)");
    let mttd = f["mttd"].as_f64().expect("the crash was detected");
    let recovery = f["recovery"].as_f64().expect("serve came back");
    assert!(
        mttd <= recovery && recovery <= 30.0,
        "mttd {mttd}, recovery {recovery}"
    );
    assert!(f["detected_by"]
        .as_str()
        .expect("how")
        .contains("new serve pid"));
    assert_eq!(sc["expectations"][0]["status"], "met");
    let cleanup: Vec<&str> = sc["cleanup"]
        .as_array()
        .expect("cleanup")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        cleanup.iter().any(|c| c.contains("grace stop --all")),
        "{cleanup:?}"
    );

    // Every serve and watchdog the run saw is gone, and so is the instance directory.
    let tl = &sc["timeline"];
    let pids: Vec<u64> = ["serve_pids", "watchdog_pids"]
        .iter()
        .flat_map(|k| tl[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["pid"].as_u64())
        .collect();
    assert!(pids.len() >= 3, "two serves and a watchdog: {pids:?}");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} was left running");
    }
    let dirs = instance_dirs(harness);
    assert!(dirs.is_empty(), "instance directory left: {dirs:?}");
    assert!(out.path().join("process_crash.svg").is_file());
}
