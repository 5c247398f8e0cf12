//! Supervisor timing with paused tokio time: intensity and its escalation through nested
//! supervisors, backoff delays, and the attempt-limit preset.

mod supervisor_util;

use std::sync::Arc;
use std::time::Duration;

use grace::bus::Topic;
use grace::kernel::{KernelState, Request};
use grace::supervisor::{
    AttemptLimit, Backoff, ChildSpec, MaxAttemptsEvent, Strategy, SupervisorExit, SupervisorHandle,
    SupervisorSpec,
};
use grace::tree::System;
use serde_json::{json, Value};
use supervisor_util::{actor, drain, panic_kernel, periodic_check, ping, state, system, Probe};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn intensity_escalates_through_two_levels_of_nesting() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let window = Duration::from_secs(60);
    // root (1 restart/min) > mid (none allowed) > inner (1 restart/min) > k
    let inner = SupervisorSpec::new("inner", Strategy::OneForOne)
        .intensity(1, window)
        .child(ChildSpec::kernel(probe.kernel("k")));
    let mid = SupervisorSpec::new("mid", Strategy::OneForOne)
        .intensity(0, window)
        .child(ChildSpec::supervisor(inner));
    let root = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(1, window)
        .child(ChildSpec::supervisor(mid));
    let root = SupervisorHandle::start(root, sys.clone())
        .await
        .expect("start");

    // 1st panic: inner absorbs it.
    panic_kernel(&sys, "k");
    periodic_check(|| probe.starts("k") == 2, WAIT).await;
    assert_eq!(root.restarts(), 0);
    // 2nd: inner exceeds, mid (no restarts allowed) fails too, root restarts mid.
    panic_kernel(&sys, "k");
    periodic_check(|| probe.starts("k") == 3, WAIT).await;
    assert_eq!(root.restarts(), 1);
    assert!(root.exit_now().is_none());
    let mid_info = &root.which_children().await.expect("children")[0];
    assert!(
        mid_info
            .last_reason
            .as_deref()
            .unwrap_or("")
            .contains("intensity"),
        "{mid_info:?}"
    );
    // 3rd: the new inner absorbs it. 4th: up to root, which exceeds and fails.
    panic_kernel(&sys, "k");
    periodic_check(|| probe.starts("k") == 4, WAIT).await;
    panic_kernel(&sys, "k");
    let exit = tokio::time::timeout(WAIT, root.wait())
        .await
        .expect("root exits");
    match exit {
        SupervisorExit::Failed(reason) => {
            assert!(
                reason.contains("root") && reason.contains("intensity"),
                "{reason}"
            )
        }
        other => panic!("root should have failed, not {other:?}"),
    }
    assert_eq!(probe.starts("k"), 4);
    assert!(sys.registry.get("k").and_then(|e| e.actor()).is_none());
    assert_eq!(state(&sys, "k"), Some(KernelState::Failed));
}

#[tokio::test(start_paused = true)]
async fn restarts_within_intensity_after_the_window_slides() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(2, Duration::from_secs(10))
        .child(ChildSpec::kernel(probe.kernel("k")));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    for n in 2..=3 {
        panic_kernel(&sys, "k");
        periodic_check(|| probe.starts("k") == n, WAIT).await;
    }
    // Two restarts in the window; once it has slid past them, two more are allowed.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for n in 4..=5 {
        panic_kernel(&sys, "k");
        periodic_check(|| probe.starts("k") == n, WAIT).await;
    }
    assert!(sup.exit_now().is_none());
    panic_kernel(&sys, "k");
    let exit = tokio::time::timeout(WAIT, sup.wait()).await.expect("exits");
    assert!(exit.is_failure());
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_restarts_exponentially_and_resets_after_quiet() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(4),
        multiplier: 2.0,
        jitter: 0.0,
        reset_after: Duration::from_secs(30),
    };
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("k")).backoff(backoff));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    let mut gaps = Vec::new();
    for n in 2..=5 {
        let t0 = tokio::time::Instant::now();
        panic_kernel(&sys, "k");
        periodic_check(|| state(&sys, "k") == Some(KernelState::Restarting), WAIT).await;
        periodic_check(|| probe.starts("k") == n, Duration::from_secs(10)).await;
        gaps.push(probe.start_times("k")[n - 1] - t0);
    }
    let secs: Vec<u64> = gaps.iter().map(|d| d.as_millis() as u64 / 1000).collect();
    assert_eq!(secs, vec![1, 2, 4, 4], "{gaps:?}");
    for (g, want) in gaps.iter().zip([1000u64, 2000, 4000, 4000]) {
        assert!(
            g.as_millis() as u64 >= want && (g.as_millis() as u64) < want + 50,
            "{gaps:?}"
        );
    }
    // Up for longer than reset_after: back to the initial delay.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let t0 = tokio::time::Instant::now();
    panic_kernel(&sys, "k");
    periodic_check(|| probe.starts("k") == 6, Duration::from_secs(10)).await;
    let gap = probe.start_times("k")[5] - t0;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_millis(1050),
        "{gap:?}"
    );
    assert_eq!(ping(&sys, "k").await.expect("answers"), 6);
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn attempt_limit_leaves_a_kernel_down_and_raises_the_alarm() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe(
        "test",
        &["kernel.restart.max_attempts", "system.critical_kernel_down"],
    );
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("crit").critical()).attempts(AttemptLimit::default()))
        .child(ChildSpec::kernel(probe.kernel("other")));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    for n in 2..=4 {
        panic_kernel(&sys, "crit");
        periodic_check(|| probe.starts("crit") == n, WAIT).await;
    }
    // The 4th failure within the 30 s cooldown: left down, no escalation.
    panic_kernel(&sys, "crit");
    periodic_check(|| state(&sys, "crit") == Some(KernelState::Failed), WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.starts("crit"), 4);
    assert!(sup.exit_now().is_none(), "the supervisor did not fail");
    assert_eq!(ping(&sys, "other").await.expect("sibling unaffected"), 1);
    let events = drain(&sys, &sub).await;
    let topics: Vec<Topic> = events.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        vec![
            Topic::KernelRestartMaxAttempts,
            Topic::SystemCriticalKernelDown
        ]
    );
    let ev: MaxAttemptsEvent = serde_json::from_value(events[0].payload.clone()).expect("payload");
    assert_eq!((ev.kernel.as_str(), ev.max_attempts), ("crit", 3));
    assert_eq!(ev.cooldown_s, 30.0);

    // An explicit restart brings it back.
    sup.force_restart("crit", "operator")
        .await
        .expect("restart");
    assert_eq!(ping(&sys, "crit").await.expect("answers"), 5);
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn restarts_in_place_count_toward_intensity_and_escalate() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(2, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("k").restart_in_place(true)));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    for n in 1..=2 {
        panic_kernel(&sys, "k");
        periodic_check(|| sup.restarts() == n, WAIT).await;
    }
    assert_eq!(probe.starts("k"), 3);
    panic_kernel(&sys, "k");
    let exit = tokio::time::timeout(WAIT, sup.wait()).await.expect("exits");
    assert!(matches!(exit, SupervisorExit::Failed(_)), "{exit:?}");
}

/// Supervisor "s" over kernel "k", which restarts in place with an attempt limit of two.
async fn in_place_with_two_attempts(sys: &Arc<System>, probe: &Probe) -> SupervisorHandle {
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(
            ChildSpec::kernel(probe.kernel("k").restart_in_place(true)).attempts(AttemptLimit {
                max_attempts: 2,
                cooldown: Duration::from_secs(30),
            }),
        );
    SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start")
}

/// What the bus shows of two repairs in place and a third failure past the limit.
const TWO_REPAIRS_THEN_DOWN: [Topic; 5] = [
    Topic::KernelRestartInitiated,
    Topic::KernelRestartSuccess,
    Topic::KernelRestartInitiated,
    Topic::KernelRestartSuccess,
    Topic::KernelRestartMaxAttempts,
];

#[tokio::test(start_paused = true)]
async fn restarts_in_place_count_toward_the_attempt_limit_and_leave_the_kernel_down() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let sup = in_place_with_two_attempts(&sys, &probe).await;
    let first = actor(&sys, "k").expect("k runs").get_id();
    for n in 1..=2 {
        panic_kernel(&sys, "k");
        periodic_check(|| sup.restarts() == n, WAIT).await;
        // Repaired in place: the same actor answers.
        assert_eq!(ping(&sys, "k").await.expect("answers"), json!(n + 1));
        assert_eq!(actor(&sys, "k").map(|a| a.get_id()), Some(first));
    }
    panic_kernel(&sys, "k");
    periodic_check(|| state(&sys, "k") == Some(KernelState::Failed), WAIT).await;
    assert_eq!(probe.starts("k"), 3, "the third panic is not repaired");
    assert_eq!(sup.restarts(), 2);
    assert!(sup.exit_now().is_none(), "the supervisor itself carries on");
    let events = drain(&sys, &sub).await;
    let topics: Vec<Topic> = events.iter().map(|e| e.topic).collect();
    assert_eq!(topics, TWO_REPAIRS_THEN_DOWN);
    assert!(events[1].payload["in_place"].as_bool().unwrap_or(false));
    assert_eq!(events[3].payload["attempt"], json!(2));
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_through_queued_requests_stops_at_the_attempt_limit_and_is_published() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let sup = in_place_with_two_attempts(&sys, &probe).await;
    // Three poisoned requests queued at once: each panics the kernel in turn, and the
    // notes of the repairs queue behind them.
    for _ in 0..3 {
        sys.registry
            .cast("k", Request::new("panic", Value::Null))
            .expect("cast");
    }
    periodic_check(|| state(&sys, "k") == Some(KernelState::Failed), WAIT).await;
    assert_eq!(probe.starts("k"), 3, "repaired twice, then left down");
    let topics: Vec<Topic> = drain(&sys, &sub).await.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics, TWO_REPAIRS_THEN_DOWN,
        "both repairs are published before the failure"
    );
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_restart_is_retried_within_its_limits() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("k")).attempts(AttemptLimit {
            max_attempts: 2,
            cooldown: Duration::from_secs(30),
        }));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    probe.fail_starts(true);
    panic_kernel(&sys, "k");
    periodic_check(|| state(&sys, "k") == Some(KernelState::Failed), WAIT).await;
    let topics: Vec<Topic> = drain(&sys, &sub).await.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        vec![
            Topic::KernelRestartInitiated,
            Topic::KernelRestartFailed,
            Topic::KernelRestartInitiated,
            Topic::KernelRestartFailed,
            Topic::KernelRestartMaxAttempts,
        ]
    );
    assert!(sup.exit_now().is_none());
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_group_waits_for_the_failed_childs_backoff_and_is_released_by_its_termination() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let backoff = Backoff {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(10),
        multiplier: 1.0,
        jitter: 0.0,
        reset_after: Duration::from_secs(60),
    };
    let s = SupervisorSpec::new("s", Strategy::RestForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("a")))
        .child(ChildSpec::kernel(probe.kernel("b")).backoff(backoff))
        .child(ChildSpec::kernel(probe.kernel("c")));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    let t0 = tokio::time::Instant::now();
    panic_kernel(&sys, "b");
    periodic_check(|| state(&sys, "c") == Some(KernelState::Restarting), WAIT).await;
    assert_eq!(state(&sys, "b"), Some(KernelState::Restarting));
    assert_eq!(probe.stops(), vec!["c"]);
    // The operator stops b for good: c no longer waits for b's delay.
    sup.terminate_child("b").await.expect("terminate");
    periodic_check(|| probe.starts("c") == 2, WAIT).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(state(&sys, "b"), Some(KernelState::Stopped));
    // b's timer fires later and finds nothing to do.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!((probe.starts("a"), probe.starts("b")), (1, 1));
    assert_eq!(ping(&sys, "c").await.expect("c answers"), 2);
    sup.shutdown(WAIT).await.expect("shutdown");
}
