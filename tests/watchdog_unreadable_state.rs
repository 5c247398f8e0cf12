//! An unreadable `state.json` (emptied, garbage): `grace status` says so, the real
//! watchdog keeps the switch as last written (`state.json.last-good`), and the file is
//! rewritten whole, naming who set the switch.

mod watchdog_support;

use std::time::Duration;

use grace::state::KillSwitch;
use nix::sys::signal::Signal;
use watchdog_support::{poll, signal, Instance};

const SECS: Duration = Duration::from_secs(5);
const SERVE: &str = r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]
min_uptime = "100ms"
stop_timeout = "2s""#;

/// The output of `grace status` with nothing running: exit 3, as LSB `status` says.
fn status_text(out: std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(3),
        "status {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stdout(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_stopped_service_with_an_emptied_state_json_stays_stopped_and_is_reported() {
    let inst = Instance::new(SERVE);
    std::fs::create_dir_all(inst.paths.root()).expect("mkdir");
    KillSwitch::set_manual_shutdown(&inst.paths, true, "grace stop").expect("set");
    std::fs::write(inst.paths.state_json(), b"").expect("empty state.json");

    let text = status_text(inst.run(&["status"]));
    let want = format!("unreadable ({}", inst.paths.state_json().display());
    assert!(text.contains(&want), "{text}");
    assert!(text.contains("SET"), "the last known switch: {text}");
    assert!(text.contains("grace stop"), "{text}");

    let mut w = inst.watch();
    assert!(poll(SECS, || !inst.events_named("serve.held").is_empty()));
    let unreadable = inst.events_named("kill_switch.unreadable");
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(unreadable[0]["fields"]["from"], "state.json.last-good");
    assert!(!poll(Duration::from_millis(300), || !inst
        .sleepers("300")
        .is_empty()));
    signal(w.id(), Signal::SIGTERM);
    assert!(w.wait().expect("wait").success());
    assert!(inst.starts().is_empty());

    // Rewritten whole at the next change, with its author.
    let out = stdout(inst.run(&["stop"]));
    assert!(out.contains("kill switch"), "{out}");
    let ks = KillSwitch::read(&inst.paths).expect("state.json rewritten");
    assert!(ks.manual_shutdown);
    assert_eq!(ks.switch_changed_by.as_deref(), Some("grace stop"));
    assert!(!status_text(inst.run(&["status"])).contains("unreadable"));
}

#[test]
fn garbage_without_a_copy_is_taken_as_clear_loudly_and_never_as_an_authorless_stop() {
    let inst = Instance::new(SERVE);
    std::fs::create_dir_all(inst.paths.root()).expect("mkdir");
    std::fs::write(inst.paths.state_json(), b"{\"manual_shu").expect("garbage");
    let text = status_text(inst.run(&["status"]));
    assert!(text.contains("unreadable ("), "{text}");
    assert!(text.contains("clear"), "{text}");

    let mut w = inst.watch();
    assert!(poll(SECS, || inst.sleepers("300").len() == 1));
    signal(w.id(), Signal::SIGTERM);
    assert!(w.wait().expect("wait").success());
    let ks = KillSwitch::read(&inst.paths).expect("state.json rewritten whole");
    assert!(!ks.manual_shutdown, "nobody set the switch: {ks:?}");
    assert_eq!(
        ks.switch_changed_by.as_deref(),
        Some("state.json unreadable")
    );
}
