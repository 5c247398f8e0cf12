//! Hang detection proportional to the work in progress, in paused time, for task
//! kernels: a handler that never returns is hung within its timeout plus one check
//! interval; a long handler that beats is not; a ticking kernel whose ticks stop
//! succeeding is hung; an idle kernel that does not tick is never hung and never ticked.

mod hang_support;
mod kernel_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use grace::config::HeartbeatConfig;
use grace::kernel::{KernelMsg, Request};
use grace::tree::{spawn_heartbeat, HeartbeatHandle};
use hang_support::*;
use kernel_support::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(1);
const CHECK: Duration = Duration::from_millis(100);
/// Polling and bus delivery on top of the bound.
const SLACK: Duration = Duration::from_millis(20);

fn heartbeat(h: &Harness) -> HeartbeatHandle {
    spawn_heartbeat(
        h.system.clone(),
        HeartbeatConfig {
            check_interval: CHECK,
            auto_restart: true,
            ..HeartbeatConfig::default()
        },
    )
}

fn send(actor: &ractor::ActorRef<KernelMsg>, op: &str, args: serde_json::Value) {
    actor
        .send_message(KernelMsg::Request(Request::new(op, args), None))
        .expect("send");
}

fn restarts(h: &Harness) -> Vec<Seen> {
    let seen = h.seen.lock();
    seen.iter()
        .filter(|s| matches!(s, Seen::Restart(..)))
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_idle_kernel_is_never_hung_nor_ticked_and_a_hung_handler_is_found_in_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), false).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let knobs = Arc::new(Knobs::default());
    let (actor, status) = h
        .spawn_registered(&quiet("idle", &knobs, false, TIMEOUT))
        .await;
    let _hb = heartbeat(&h);

    assert!(next_missed(&h.system, &sub, 20 * TIMEOUT).await.is_none());
    assert_eq!(knobs.ticks.load(Ordering::SeqCst), 0, "no ticks");
    assert_eq!(status.messages(), 0, "no message of any kind");
    assert_eq!(status.heartbeat_age_ms(), 0, "idle: no age");
    assert!(!status.is_hung());

    send(&actor, "hang", json!(null));
    let (took, m) = next_missed(&h.system, &sub, 5 * TIMEOUT)
        .await
        .expect("the hang is found");
    assert!(
        took >= TIMEOUT && took <= TIMEOUT + CHECK + SLACK,
        "{took:?}"
    );
    assert_eq!((m.kernel.as_str(), m.timeout_ms), ("idle", 1000));
    assert!(m.heartbeat_age_ms > 1000, "{m:?}");
    assert_eq!(
        restarts(&h),
        vec![Seen::Restart("idle".into(), "heartbeat_timeout".into())]
    );
    // Published once per hang, however long it lasts.
    assert!(next_missed(&h.system, &sub, 5 * TIMEOUT).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_kernel_busy_with_short_handlers_is_not_hung_and_its_later_hang_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), false).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let knobs = Arc::new(Knobs::default());
    let (actor, status) = h
        .spawn_registered(&quiet("steady", &knobs, false, TIMEOUT))
        .await;
    let _hb = heartbeat(&h);

    // Short handlers back to back and with gaps, for five timeouts.
    for i in 0..50u64 {
        send(&actor, "sleep", json!({ "ms": 20 + (i % 7) * 10 }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(next_missed(&h.system, &sub, TIMEOUT).await.is_none());
    assert_eq!(status.messages(), 50);
    assert_eq!(knobs.ticks.load(Ordering::SeqCst), 0);

    send(&actor, "hang", json!(null));
    let (took, _) = next_missed(&h.system, &sub, 5 * TIMEOUT)
        .await
        .expect("the hang is found");
    assert!(took <= TIMEOUT + CHECK + SLACK, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_long_handler_that_beats_is_not_hung_until_it_stops_beating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), false).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let knobs = Arc::new(Knobs::default());
    let (actor, status) = h
        .spawn_registered(&quiet("long", &knobs, false, TIMEOUT))
        .await;
    let _hb = heartbeat(&h);

    // Works for five timeouts, beating every 250 ms (last at 5 s), then hangs without
    // beating.
    send(
        &actor,
        "work_then_hang",
        json!({ "ms": 5000, "every": 250 }),
    );
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(status.busy_since_ms().is_some(), "still working");
    assert!(!status.is_hung());
    let (took, m) = next_missed(&h.system, &sub, 5 * TIMEOUT)
        .await
        .expect("the hang after the work is found");
    let since_last_beat = took - Duration::from_millis(500);
    assert!(
        since_last_beat >= TIMEOUT && since_last_beat <= TIMEOUT + CHECK + SLACK,
        "{since_last_beat:?}"
    );
    assert_eq!(m.kernel, "long");
}

#[tokio::test(start_paused = true)]
async fn a_ticking_kernel_whose_ticks_stop_succeeding_is_hung() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), false).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let knobs = Arc::new(Knobs::default());
    let (_actor, status) = h
        .spawn_registered(&quiet("probed", &knobs, true, TIMEOUT))
        .await;
    let _hb = heartbeat(&h);

    assert!(next_missed(&h.system, &sub, 5 * TIMEOUT).await.is_none());
    let ticks = knobs.ticks.load(Ordering::SeqCst);
    assert!((45..=51).contains(&ticks), "ticked every 100 ms: {ticks}");

    knobs.unresponsive.store(true, Ordering::SeqCst);
    let (took, m) = next_missed(&h.system, &sub, 5 * TIMEOUT)
        .await
        .expect("the silent kernel is found");
    assert!(took <= TIMEOUT + CHECK + SLACK, "{took:?}");
    assert_eq!(m.kernel, "probed");
    assert!(status.is_unresponsive());
    assert_eq!(
        restarts(&h),
        vec![Seen::Restart("probed".into(), "heartbeat_timeout".into())]
    );
}
