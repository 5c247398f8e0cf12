//! The kill switch: `grace stop` keeps serve down, even across a watchdog restart;
//! `grace start` brings it back (starting a background watchdog when none runs);
//! `grace restart` replaces serve without touching the switch.

mod watchdog_support;

use std::time::Duration;

use grace::state::KillSwitch;
use nix::sys::signal::Signal;
use watchdog_support::{poll, signal, Instance};

const SECS: Duration = Duration::from_secs(5);
const SERVE: &str = r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]
min_uptime = "100ms"
stop_timeout = "2s""#;

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

#[test]
fn stop_stays_stopped_across_a_watchdog_restart_until_start() {
    let inst = Instance::new(SERVE);
    let mut w = inst.watch();
    assert!(poll(SECS, || inst.sleepers("300").len() == 1));
    let out = ok(inst.run(&["stop"]));
    assert!(out.contains("kill switch"), "{out}");
    assert!(
        inst.sleepers("300").is_empty(),
        "stop returned with serve running"
    );
    let ks = KillSwitch::read(&inst.paths).expect("state.json");
    assert!(ks.manual_shutdown);
    // `grace stop` returns once nothing of serve runs; the watchdog's own record of the
    // stop may land just after.
    assert!(
        poll(SECS, || KillSwitch::read(&inst.paths).is_ok_and(|k| k
            .manual_shutdown
            && k.updated_by == "watchdog")),
        "the watchdog records the stop after the CLI: {:?}",
        KillSwitch::read(&inst.paths)
    );
    assert!(poll(SECS, || !inst
        .events_named("grace.kill_switch")
        .is_empty()));

    // A new watchdog (a reboot) reads the switch and does not start serve.
    signal(w.id(), Signal::SIGTERM);
    assert!(w.wait().expect("wait").success());
    let _w2 = inst.watch();
    assert!(poll(SECS, || !inst.events_named("serve.held").is_empty()));
    assert!(!poll(Duration::from_millis(200), || !inst
        .sleepers("300")
        .is_empty()));
    assert_eq!(inst.starts().len(), 1);

    let out = ok(inst.run(&["start"]));
    assert!(out.contains("healthy"), "{out}");
    assert_eq!(inst.sleepers("300").len(), 1);
    assert!(
        !KillSwitch::read(&inst.paths)
            .expect("state")
            .manual_shutdown
    );
}

#[test]
fn start_without_a_watchdog_runs_one_in_the_background_and_stop_all_ends_it() {
    let inst = Instance::new(SERVE);
    ok(inst.run(&["start"]));
    let wd = grace::state::lock_holder(&inst.paths.watchdog_lock()).expect("a watchdog runs");
    assert_eq!(inst.sleepers("300").len(), 1);
    let pid_file: u32 = std::fs::read_to_string(inst.paths.watchdog_pid())
        .expect("watchdog.pid")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid_file, wd);
    // It left our session.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(wd as i32))).expect("sid");
    assert_eq!(sid.as_raw() as u32, wd);

    let before = inst.sleepers("300");
    ok(inst.run(&["restart"]));
    let after = inst.sleepers("300");
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "restart must replace serve");
    assert!(
        !KillSwitch::read(&inst.paths)
            .expect("state")
            .manual_shutdown
    );

    ok(inst.run(&["stop", "--all"]));
    assert!(inst.procs().is_empty(), "left: {:?}", inst.procs());
    assert!(!inst.paths.watchdog_pid().exists());
}

#[test]
fn restart_refuses_while_the_switch_is_set_and_stop_works_without_a_watchdog() {
    let inst = Instance::new(SERVE);
    let mut w = inst.watch();
    assert!(poll(SECS, || inst.sleepers("300").len() == 1));
    // The watchdog dies without a chance to clean up; its serve is left running.
    signal(w.id(), Signal::SIGKILL);
    w.wait().expect("wait");
    assert_eq!(inst.sleepers("300").len(), 1);
    ok(inst.run(&["stop"]));
    assert!(inst.sleepers("300").is_empty());
    let out = inst.run(&["restart"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("grace start"));
}
