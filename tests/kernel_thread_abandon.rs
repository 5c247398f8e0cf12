//! A thread kernel stuck in a CPU loop cannot be stopped: killing it ends its proxy at
//! once, its thread is counted as abandoned, and past `max_abandoned_threads` serve asks
//! the watchdog for a restart. (Its own test binary: the counts are process-wide.)

mod kernel_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::Config;
use grace::kernel::thread::{kernel_threads, ABANDON_GRACE};
use grace::kernel::{Isolation, KernelMsg, Request};
use kernel_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_threads_are_abandoned_counted_and_past_the_bound_restart_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.kernels.max_abandoned_threads = 1;
    let h = Harness::new(system_with(dir.path(), config), true).await;
    let mut restarts = h.system.restart_requests();
    let before = kernel_threads();
    let spin_ms = 2500;

    for (i, name) in ["ab-one", "ab-two"].into_iter().enumerate() {
        let probe = Arc::new(Probe::default());
        let spec = test_spec(name, &probe).isolation(Isolation::Thread);
        let (actor, _) = h.spawn(&spec).await.expect("starts");
        actor
            .send_message(KernelMsg::Request(
                Request::new("spin", json!(spin_ms)),
                None,
            ))
            .expect("send");
        eventually(Duration::from_secs(5), "the kernel to spin", || {
            probe.spinning.load(Ordering::SeqCst)
        })
        .await;

        let t0 = Instant::now();
        actor.kill();
        let exit = h.exit_of(actor.get_id(), Duration::from_secs(1)).await;
        assert!(matches!(exit, Seen::Terminated(..)), "{exit:?}");
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "the kill did not wait"
        );

        eventually(
            ABANDON_GRACE * 3,
            "the thread to be counted abandoned",
            || kernel_threads().abandoned > before.abandoned + i,
        )
        .await;
        assert!(
            probe.spinning.load(Ordering::SeqCst),
            "still stuck, as expected"
        );
    }

    assert_eq!(kernel_threads().abandoned_total, before.abandoned_total + 2);
    eventually(Duration::from_secs(1), "a restart request", || {
        restarts.has_changed().unwrap_or(false)
    })
    .await;
    assert_eq!(
        restarts.borrow_and_update().as_deref(),
        Some("abandoned kernel threads")
    );

    // When the loops end, the killed actors die at last and their threads end.
    eventually(Duration::from_secs(6), "the stuck threads to end", || {
        let c = kernel_threads();
        c.abandoned == before.abandoned && c.live == before.live
    })
    .await;
}
