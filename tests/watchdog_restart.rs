//! The watchdog restarts what crashes or hangs: at once for a crash, by health probe for
//! a hang, with backoff, a pause and a critical alert for a crash loop; descendants that
//! escape serve's process group do not outlive it.

mod watchdog_support;

use std::time::Duration;

use nix::sys::signal::Signal;
use watchdog_support::{fake_serve_command, fake_serve_main, poll, signal, Instance};

const SECS: Duration = Duration::from_secs(5);

/// Entry of the fake serve process (this binary re-executed by the watchdog).
#[test]
fn fake_serve_entry() {
    if fake_serve_main() {
        return;
    }
    assert!(std::env::var_os(watchdog_support::FAKE_SERVE).is_none());
}

#[test]
fn crashed_serve_is_restarted_at_once_and_its_escaped_grandchild_killed() {
    let inst = Instance::new(
        r#"command = ["sh", "-c", "(setsid {dir}/sleep 301 &); echo $$ >> {dir}/starts; exec {dir}/sleep 300"]
min_uptime = "200ms"
stop_timeout = "1s""#,
    );
    let mut w = inst.watch();
    assert!(poll(SECS, || inst.starts().len() == 1
        && inst.sleepers("301").len() == 1));
    let first = inst.starts()[0];
    assert!(poll(SECS, || inst.sleepers("300") == vec![first]));
    let orphan = inst.sleepers("301")[0];
    signal(first, Signal::SIGKILL);
    assert!(
        poll(SECS, || inst.starts().len() == 2),
        "no restart: {:?}",
        inst.events()
    );
    let second = inst.starts()[1];
    assert!(
        poll(SECS, || !watchdog_support::alive(orphan)),
        "orphan survived"
    );
    assert!(poll(SECS, || inst.sleepers("300") == vec![second]
        && inst.sleepers("301").len() == 1));
    assert!(poll(SECS, || !inst.events_named("serve.exited").is_empty()));
    let exited = inst.events_named("serve.exited");
    assert_eq!(exited[0]["fields"]["reason"], "killed by SIGKILL");
    assert!(poll(SECS, || grace::state::KillSwitch::read(&inst.paths)
        .is_ok_and(|k| k.restart_count == 1
            && k.last_exit_reason.as_deref()
                == Some("killed by SIGKILL"))));
    signal(w.id(), Signal::SIGTERM);
    let st = w.wait().expect("wait");
    assert!(st.success(), "{st}");
    assert!(inst.sleepers("300").is_empty() && inst.sleepers("301").is_empty());
}

#[test]
fn crash_loop_backs_off_pauses_and_raises_a_critical_alert() {
    let inst = Instance::new(
        r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exit 3"]
min_uptime = "1s"
backoff_initial = "40ms"
backoff_jitter = 0.0
max_consecutive_failures = 4
pause_after_failures = "30s""#,
    );
    let _w = inst.watch();
    assert!(
        poll(SECS, || !inst.alerts("critical").is_empty()),
        "{:?}",
        inst.events()
    );
    assert_eq!(inst.starts().len(), 4);
    let delays: Vec<u64> = inst
        .events_named("watchdog.backoff")
        .iter()
        .filter_map(|e| e["fields"]["delay_ms"].as_u64())
        .collect();
    assert_eq!(delays, vec![40, 80]);
    let latest: grace::alerts::LatestNotification = serde_json::from_slice(
        &std::fs::read(inst.paths.alerts_dir().join("latest_notification.json")).expect("latest"),
    )
    .expect("parse");
    assert!(latest.requires_attention || latest.severity == grace::alerts::Severity::Warning);
    let alert: grace::alerts::AlertFile =
        serde_json::from_slice(&std::fs::read(&inst.alerts("critical")[0]).expect("read"))
            .expect("parse");
    assert_eq!(alert.event_type, "watchdog.crash_loop");
    assert_eq!(alert.payload["failures"], 4);
    // Paused: nothing starts for a while.
    assert!(!poll(Duration::from_millis(300), || inst.starts().len() > 4));
}

#[test]
fn stopped_serve_is_detected_as_hung_and_replaced() {
    let inst = Instance::new("");
    let cfg = format!(
        "[watchdog]\n{}\nhealth_check = true\ncheck_interval = \"100ms\"\nhealth_timeout = \"100ms\"\nhealth_failures = 3\nmin_uptime = \"200ms\"\nstop_timeout = \"1s\"\n",
        fake_serve_command("fake_serve_entry", inst.root())
    );
    std::fs::write(&inst.config, cfg).expect("config");
    let _w = inst.watch();
    assert!(
        poll(SECS, || !inst.events_named("serve.ready").is_empty()),
        "{:?}",
        inst.events()
    );
    let first = inst.starts()[0];
    signal(first, Signal::SIGSTOP);
    assert!(
        poll(SECS, || inst.starts().len() == 2),
        "{:?}",
        inst.events()
    );
    assert!(poll(SECS, || !watchdog_support::alive(first)));
    assert_eq!(inst.events_named("serve.hung").len(), 1);
    assert!(poll(SECS, || !inst
        .events_named("grace.restart.success")
        .is_empty()));
    assert!(poll(SECS, || !inst.alerts("warning").is_empty()));
}

#[test]
fn restart_requested_after_serving_is_replaced_at_once_without_counting_as_a_crash() {
    let inst = Instance::new(
        r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; sleep 0.15; exit 75"]
min_uptime = "100ms"
backoff_initial = "5s"
max_consecutive_failures = 2"#,
    );
    let _w = inst.watch();
    // Far more starts than max_consecutive_failures, none delayed, no alert.
    assert!(
        poll(SECS, || inst.starts().len() >= 6),
        "{:?}",
        inst.events()
    );
    assert!(inst.events_named("watchdog.backoff").is_empty());
    assert!(inst.events_named("watchdog.crash_loop").is_empty());
    assert!(inst.alerts("critical").is_empty() && inst.alerts("warning").is_empty());
    assert!(inst
        .events_named("serve.exited")
        .iter()
        .all(|e| e["fields"]["reason"] == "restart requested"
            && e["fields"]["failed_start"] == false));
}

#[test]
fn restart_requested_at_every_start_is_a_crash_loop() {
    let inst = Instance::new(
        r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exit 75"]
min_uptime = "1s"
backoff_initial = "40ms"
backoff_jitter = 0.0
max_consecutive_failures = 3
pause_after_failures = "30s""#,
    );
    let _w = inst.watch();
    assert!(
        poll(SECS, || !inst
            .events_named("watchdog.crash_loop")
            .is_empty()),
        "{:?}",
        inst.events()
    );
    assert_eq!(inst.starts().len(), 3);
    assert!(inst
        .events_named("serve.exited")
        .iter()
        .all(
            |e| e["fields"]["reason"] == "restart requested" && e["fields"]["failed_start"] == true
        ));
    // Paused: nothing starts for a while.
    assert!(!poll(Duration::from_millis(300), || inst.starts().len() > 3));
}
