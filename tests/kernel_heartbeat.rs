//! The heartbeat ticker and monitor over real kernel actors, in paused time: ticks at
//! each kernel's interval, one `kernel.heartbeat.missed` per hang, and at most one
//! restart request in flight per hung kernel.

mod kernel_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use grace::bus::{Subscription, Topic};
use grace::config::HeartbeatConfig;
use grace::kernel::{Fault, KernelMsg, Request};
use grace::tree::{spawn_heartbeat, HeartbeatMissed};
use kernel_support::*;
use serde_json::json;

fn cfg(auto_restart: bool) -> HeartbeatConfig {
    HeartbeatConfig {
        check_interval: Duration::from_millis(50),
        auto_restart,
        ..HeartbeatConfig::default()
    }
}

async fn missed(h: &Harness, sub: &Subscription) -> Vec<HeartbeatMissed> {
    h.system.bus.pump(1024, Duration::from_millis(1)).await;
    let mut out = Vec::new();
    while let Some(e) = sub.try_recv() {
        assert_eq!(e.topic, Topic::KernelHeartbeatMissed);
        out.push(serde_json::from_value(e.payload).expect("payload"));
    }
    out
}

fn restarts(h: &Harness) -> Vec<Seen> {
    h.seen
        .lock()
        .iter()
        .filter(|s| matches!(s, Seen::Restart(..)))
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_kernel_is_ticked_at_its_own_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let fast = Arc::new(Probe::default());
    let slow = Arc::new(Probe::default());
    let ms = Duration::from_millis;
    h.spawn_registered(&test_spec("fast", &fast).heartbeat(ms(100), ms(10_000)))
        .await;
    h.spawn_registered(&test_spec("slow", &slow).heartbeat(ms(1000), ms(10_000)))
        .await;
    let hb = spawn_heartbeat(h.system.clone(), cfg(true));

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (f, s) = (
        fast.ticks.load(Ordering::SeqCst),
        slow.ticks.load(Ordering::SeqCst),
    );
    assert!(
        (48..=51).contains(&f),
        "fast kernel ticked {f} times in 5 s"
    );
    assert!((4..=6).contains(&s), "slow kernel ticked {s} times in 5 s");
    assert!(hb.is_running());

    hb.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = fast.ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fast.ticks.load(Ordering::SeqCst), after, "stopped");
}

#[tokio::test(start_paused = true)]
async fn a_hang_is_published_once_and_restarted_once_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The parent holds restart requests unanswered: the restart stays in flight.
    let h = Harness::new(system(dir.path()), false).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let probe = Arc::new(Probe::default());
    let ms = Duration::from_millis;
    let (_, status) = h
        .spawn_registered(&test_spec("stuck", &probe).heartbeat(ms(50), ms(300)))
        .await;
    let _hb = spawn_heartbeat(h.system.clone(), cfg(true));

    tokio::time::sleep(ms(500)).await;
    assert!(
        missed(&h, &sub).await.is_empty(),
        "a ticking kernel is not hung"
    );

    h.system
        .registry
        .inject("stuck", Fault::Hang)
        .expect("inject");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = missed(&h, &sub).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kernel, "stuck");
    assert_eq!(events[0].timeout_ms, 300);
    assert!(events[0].heartbeat_age_ms > 300);
    assert_eq!(
        restarts(&h),
        vec![Seen::Restart("stuck".into(), "heartbeat_timeout".into())]
    );
    assert!(
        status.mailbox() <= 2,
        "ticks do not pile up: {}",
        status.mailbox()
    );
}

#[tokio::test(start_paused = true)]
async fn each_new_hang_is_published_again_and_auto_restart_can_be_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let sub = h.system.bus.subscribe("test", &["kernel.heartbeat.*"]);
    let probe = Arc::new(Probe::default());
    let ms = Duration::from_millis;
    let (actor, _) = h
        .spawn_registered(&test_spec("slowcall", &probe).heartbeat(ms(50), ms(300)))
        .await;
    let _hb = spawn_heartbeat(h.system.clone(), cfg(false));

    for round in 1..=2 {
        actor
            .send_message(KernelMsg::Request(Request::new("sleep", json!(800)), None))
            .expect("send");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(missed(&h, &sub).await.len(), 1, "round {round}");
    }
    assert!(restarts(&h).is_empty(), "auto_restart is off");
}
