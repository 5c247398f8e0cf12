//! The PM2 process file (`examples/deploy/ecosystem.config.js`), evaluated by Node.js as
//! PM2 loads it: one forked watchdog with output and errors in separate files and
//! `GRACE_LOG_STDOUT=1`; and its command, run with its environment and stdout and
//! stderr apart as PM2 keeps them, writes INFO lines (the watchdog's and serve's) to
//! stdout and none to stderr.

mod deploy_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deploy_support::{grace_ok, status, Running, GRACE};
use nix::sys::signal::Signal;
use serde_json::Value;

fn ecosystem_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/ecosystem.config.js")
}

/// The file's `module.exports`, as Node.js evaluates it.
fn ecosystem() -> Value {
    let out = Command::new("node")
        .arg("-e")
        .arg("process.stdout.write(JSON.stringify(require(process.argv[1])))")
        .arg(ecosystem_path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run node ({e}): run .ci/install-deps (Debian package nodejs)")
        });
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("module.exports as JSON")
}

fn app() -> Value {
    let e = ecosystem();
    let apps = e["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 1, "one app: the watchdog");
    apps[0].clone()
}

#[test]
fn pm2_runs_one_watchdog_with_output_and_errors_apart() {
    let a = app();
    assert_eq!(a["name"], "grace");
    assert_eq!(a["script"], "/usr/local/bin/grace");
    assert_eq!(a["interpreter"], "none", "a binary, not a Node.js script");
    assert_eq!(a["exec_mode"], "fork");
    assert_eq!(a["instances"], 1, "one watchdog per state directory");
    assert_eq!(a["watch"], false);
    assert_eq!(a["autorestart"], true);
    let args: Vec<&str> = a["args"]
        .as_str()
        .expect("args")
        .split_whitespace()
        .collect();
    assert!(args.contains(&"watch"), "{args:?}");
    assert!(
        args.contains(&"--state-dir") && args.contains(&"--config"),
        "{args:?}"
    );
    let (out, err) = (
        a["out_file"].as_str().expect("out_file"),
        a["error_file"].as_str().expect("error_file"),
    );
    assert_ne!(out, err, "output and errors apart");
    assert_eq!(
        a["env"]["GRACE_LOG_STDOUT"], "1",
        "INFO lines go to out_file"
    );
    assert!(
        a["stop_exit_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&Value::from(2))),
        "a bad config (exit 2) is not restarted"
    );
    // PM2 sends SIGINT, then SIGKILL after kill_timeout: the watchdog's graceful stop
    // ([watchdog] stop_timeout, 10 s by default) must fit.
    assert!(a["kill_timeout"].as_u64().is_some_and(|ms| ms > 10_000));
}

#[test]
fn info_lines_go_to_out_file_and_none_to_error_file() {
    let a = app();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let config = root.join("grace.toml");
    grace_ok(&[Path::new("init"), root]);
    // The file's args, with its paths under the temporary root and a free port.
    let args: Vec<String> = a["args"]
        .as_str()
        .expect("args")
        .split_whitespace()
        .map(|x| match x {
            "8000" => "0".to_owned(),
            "/etc/grace/grace.toml" => config.display().to_string(),
            p if p.starts_with('/') => root.join(p.trim_start_matches('/')).display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    let state = root.join("var/lib/grace");
    let (out_file, err_file) = (root.join("out.log"), root.join("error.log"));
    let mut cmd = Command::new(GRACE);
    cmd.args(&args)
        .current_dir(root)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("out"))
        .stderr(std::fs::File::create(&err_file).expect("err"));
    for (k, v) in a["env"].as_object().expect("env") {
        cmd.env(k, v.as_str().expect("env value"));
    }
    let mut w = Running {
        child: cmd.spawn().expect("grace watch"),
        state: state.clone(),
    };
    // Until serve answers healthy, as `grace status` reports it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&config, &state);
        if s.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "serve never healthy: {s:?}");
        w.assert_alive("grace watch");
        std::thread::sleep(Duration::from_millis(100));
    }
    // PM2 stops an app with SIGINT.
    let exit = w.stop(Signal::SIGINT, Duration::from_secs(30));
    assert!(exit.success(), "{exit}");
    let out = std::fs::read_to_string(&out_file).expect("out.log");
    let err = std::fs::read_to_string(&err_file).expect("error.log");
    // The watchdog's records and serve's lines, at INFO, on stdout.
    assert!(
        out.lines().any(|l| l.contains(" INFO  watchdog.started")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains(" INFO  serve.ready")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(" INFO ") && l.contains("listening")),
        "serve's INFO lines: {out}"
    );
    // Nothing at INFO on stderr; anything there is a warning or an error.
    let info_on_stderr: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains("\"level\":\"INFO\""))
        .collect();
    assert!(
        info_on_stderr.is_empty(),
        "INFO on stderr: {info_on_stderr:#?}"
    );
    for l in err.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            ["WARN", "ERROR"].iter().any(|lvl| l.contains(lvl)),
            "not a warning or an error on stderr: {l}"
        );
    }
}
