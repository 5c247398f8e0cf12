//! Control commands tell the truth: `grace start` right after the watchdog was
//! SIGKILLed reports the serve its new watchdog started, never the leftover serve that
//! watchdog replaces; `grace restart` reports the new one.

mod watchdog_support;

use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use watchdog_support::{alive, poll, signal, Instance};

const SECS: Duration = Duration::from_secs(10);
const FAST: &str = r#"check_interval = "100ms"
health_timeout = "500ms"
health_failures = 3
min_uptime = "300ms"
stop_timeout = "3s""#;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pid in "serve running (pid N), healthy".
fn reported(out: &str) -> u32 {
    out.split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {out:?}"))
}

#[test]
fn start_after_the_watchdog_was_killed_reports_the_new_serve() {
    let inst = Instance::new(FAST);
    let first = reported(&ok(inst.run(&["start", "--port", "0"])));
    let wd = grace::cli::control::watchdog_pid(&inst.paths).expect("watchdog");
    signal(wd, Signal::SIGKILL);
    assert!(poll(SECS, || !alive(wd)));
    assert!(alive(first), "the leftover serve runs on");

    let out = ok(inst.run(&["start", "--port", "0"]));
    let now = reported(&out);
    assert_ne!(now, first, "reported the leftover serve: {out}");
    let info = ServeInfo::read(&inst.paths)
        .expect("read")
        .expect("serve.json");
    assert_eq!(info.pid, now, "serve.json names the reported serve");
    assert!(!alive(first), "the leftover was replaced");

    let out = ok(inst.run(&["restart"]));
    let again = reported(&out);
    assert_ne!(again, now);
    assert_eq!(
        ServeInfo::read(&inst.paths).expect("read").map(|i| i.pid),
        Some(again)
    );
    ok(inst.run(&["stop", "--all"]));
}
