//! One serve per state directory: a second watchdog is refused and names the first; a
//! watchdog started after its predecessor was SIGKILLed replaces the serve left behind,
//! so exactly one serve runs and nothing of the old tree survives.

mod watchdog_support;

use std::time::Duration;

use nix::sys::signal::Signal;
use watchdog_support::{poll, signal, Instance};

const SECS: Duration = Duration::from_secs(5);

#[test]
fn a_second_watchdog_is_refused_naming_the_first() {
    let inst =
        Instance::new(r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]"#);
    let w = inst.watch();
    assert!(poll(SECS, || inst.sleepers("300").len() == 1));
    let out = inst.run(&["watch"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&w.id().to_string()), "{err}");
    assert_eq!(inst.sleepers("300").len(), 1);
    assert_eq!(inst.starts().len(), 1);
}

#[test]
fn sigkilled_watchdog_restarted_leaves_exactly_one_serve_and_no_orphans() {
    let inst = Instance::new(
        r#"command = ["sh", "-c", "(setsid {dir}/sleep 301 &); echo $$ >> {dir}/starts; exec {dir}/sleep 300"]
stop_timeout = "1s""#,
    );
    let mut w = inst.watch();
    assert!(poll(SECS, || inst.sleepers("300").len() == 1
        && inst.sleepers("301").len() == 1));
    let (old_serve, old_orphan) = (inst.sleepers("300")[0], inst.sleepers("301")[0]);
    signal(w.id(), Signal::SIGKILL);
    w.wait().expect("wait");

    let _w2 = inst.watch();
    assert!(
        poll(SECS, || inst.starts().len() == 2),
        "{:?}",
        inst.events()
    );
    assert!(poll(SECS, || !watchdog_support::alive(old_serve)
        && !watchdog_support::alive(old_orphan)));
    assert!(poll(SECS, || inst.sleepers("300").len() == 1
        && inst.sleepers("301").len() == 1));
    assert_eq!(inst.sleepers("300"), vec![inst.starts()[1]]);
    assert!(!inst.events_named("serve.replacing_leftover").is_empty());
}
