//! The supervisor against OTP's own behaviour, case by case: a supervisor that answers
//! while a child fails to start, kernel names unique across supervisors, `restart_child`
//! as OTP has it, group restarts of children down on purpose, spec validation, temporary
//! children forgotten when terminated, and a dynamic supervisor's concurrent shutdown.

mod supervisor_util;

use std::time::Duration;

use grace::kernel::KernelState;
use grace::supervisor::{
    ChildSpec, RestartType, Shutdown, Started, Strategy, SupervisorError, SupervisorExit,
    SupervisorHandle, SupervisorSpec,
};
use supervisor_util::{panic_kernel, periodic_check, state, system, Probe, StartPlan};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(5);

fn kernel(probe: &Probe, name: &str) -> ChildSpec {
    ChildSpec::kernel(probe.kernel(name))
}

/// A call answered within `bound`, or a panic naming the call.
async fn answered<T>(what: &str, bound: Duration, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(bound, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} got no answer within {bound:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_start_sleeps_and_fails_leaves_its_supervisor_answering() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("deaf", Strategy::OneForOne)
        .intensity(1000, Duration::from_secs(3600))
        .child(kernel(&probe, "ok"))
        .child(kernel(&probe, "slow"));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    probe.plan_starts(
        "slow",
        StartPlan {
            fail: u32::MAX,
            delay: Duration::from_millis(200),
            ..StartPlan::default()
        },
    );
    panic_kernel(&sys, "slow");
    // Retrying: each attempt takes 200 ms and fails.
    periodic_check(|| sup.restarts() >= 2, WAIT).await;
    // Every call is answered within about one start, however long the retries go on.
    for _ in 0..5 {
        let kids = answered(
            "which_children",
            Duration::from_secs(1),
            sup.which_children(),
        )
        .await
        .expect("which_children");
        assert_eq!(kids.len(), 2);
        answered(
            "count_children",
            Duration::from_secs(1),
            sup.count_children(),
        )
        .await
        .expect("count_children");
    }
    // terminate_child ends the retries; the child stays down, its sibling untouched.
    answered(
        "terminate_child",
        Duration::from_secs(1),
        sup.terminate_child("slow"),
    )
    .await
    .expect("terminate");
    let after = sup.restarts();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sup.restarts(), after, "no retry after terminate_child");
    assert_eq!(state(&sys, "slow"), Some(KernelState::Stopped));
    assert_eq!(state(&sys, "ok"), Some(KernelState::Running));
    let exit = answered("shutdown", Duration::from_secs(2), sup.shutdown(WAIT)).await;
    assert_eq!(exit, Ok(SupervisorExit::Normal), "stopped, not killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_failing_start_count_toward_intensity() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("bounded", Strategy::OneForOne)
        .intensity(3, Duration::from_secs(3600))
        .child(kernel(&probe, "k"));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    probe.plan_starts(
        "k",
        StartPlan {
            fail: u32::MAX,
            ..StartPlan::default()
        },
    );
    panic_kernel(&sys, "k");
    let exit = answered("wait", WAIT, sup.wait()).await;
    assert!(
        matches!(&exit, SupervisorExit::Failed(r) if r.contains("intensity")),
        "{exit:?}"
    );
    assert_eq!(
        sup.restarts(),
        3,
        "the crash and two retries, then the fourth fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_never_finishes_is_bounded_by_its_start_timeout() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let child = ChildSpec::kernel(
        probe
            .kernel("stuck")
            .start_timeout(Duration::from_millis(200)),
    );
    let spec = SupervisorSpec::new("bounded", Strategy::OneForOne).child(kernel(&probe, "ok"));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    probe.plan_starts(
        "stuck",
        StartPlan {
            hang: true,
            ..StartPlan::default()
        },
    );
    let r = answered(
        "start_child",
        Duration::from_secs(2),
        sup.start_child(child),
    )
    .await;
    assert!(
        matches!(&r, Err(SupervisorError::StartFailed { reason, .. }) if reason.contains("start_timeout")),
        "{r:?}"
    );
    assert_eq!(sup.count_children().await.expect("count").specs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_name_held_by_another_supervisor_is_refused() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let a = SupervisorHandle::start(
        SupervisorSpec::new("a", Strategy::OneForOne).child(kernel(&probe, "shared")),
        sys.clone(),
    )
    .await
    .expect("a");
    let b = SupervisorHandle::start(SupervisorSpec::new("b", Strategy::OneForOne), sys.clone())
        .await
        .expect("b");
    let r = b.start_child(kernel(&probe, "shared")).await;
    assert!(
        matches!(&r, Err(SupervisorError::NameTaken { name, .. }) if name == "shared"),
        "{r:?}"
    );
    let entry = sys.registry.get("shared").expect("entry");
    assert_eq!(
        entry.supervisor.get_id(),
        a.actor().get_id(),
        "the name stays with a"
    );
    assert!(entry.actor().is_some(), "a's kernel still resolves");
    assert_eq!(b.count_children().await.expect("count").specs, 0);
    // Once its holder has stopped, the name can be taken.
    a.shutdown(WAIT).await.expect("stop a");
    assert_eq!(
        b.start_child(kernel(&probe, "shared")).await,
        Ok(Started::Running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restart_child_returns_its_error_and_leaves_the_supervisor_untouched() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(1, Duration::from_secs(3600))
        .child(kernel(&probe, "a"))
        .child(kernel(&probe, "b"));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    sup.terminate_child("a").await.expect("terminate");
    probe.plan_starts(
        "a",
        StartPlan {
            fail: 3,
            ..StartPlan::default()
        },
    );
    for _ in 0..3 {
        let r = sup.restart_child("a").await;
        assert!(
            matches!(r, Err(SupervisorError::StartFailed { .. })),
            "{r:?}"
        );
    }
    assert!(sup.exit_now().is_none(), "explicit restarts never escalate");
    assert_ne!(state(&sys, "a"), Some(KernelState::Running));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_ne!(
        state(&sys, "a"),
        Some(KernelState::Running),
        "a failed restart_child is not retried"
    );
    // The intensity window is still whole: b's crash is restarted.
    let before = probe.starts("b");
    panic_kernel(&sys, "b");
    periodic_check(|| probe.starts("b") == before + 1, WAIT).await;
    assert!(sup.exit_now().is_none());
    assert_eq!(sup.restart_child("a").await, Ok(Started::Running));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_child_of_a_running_child_is_refused_and_force_restart_restarts_it() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("s", Strategy::OneForOne).child(kernel(&probe, "a"));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    assert_eq!(
        sup.restart_child("a").await,
        Err(SupervisorError::Running("a".into()))
    );
    assert_eq!(probe.starts("a"), 1);
    sup.force_restart("a", "operator").await.expect("force");
    assert_eq!(probe.starts("a"), 2);
    assert_eq!(
        sup.restart_child("zz").await,
        Err(SupervisorError::NoSuchChild("zz".into()))
    );
}

/// Children a, b (transient), c (permanent); b exits normally and c is terminated,
/// then a crash of `crash` restarts, by `strategy`, every non-temporary child in scope.
async fn group_restart_brings_back_children_down_on_purpose(strategy: Strategy, crash: &str) {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("g", strategy)
        .intensity(10, Duration::from_secs(3600))
        .child(kernel(&probe, "a"))
        .child(kernel(&probe, "b").restart(RestartType::Transient))
        .child(kernel(&probe, "c"))
        .child(kernel(&probe, "d").restart(RestartType::Temporary));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    sys.registry
        .cast(
            "b",
            grace::kernel::Request::new("exit", serde_json::Value::Null),
        )
        .expect("cast");
    periodic_check(|| state(&sys, "b") == Some(KernelState::Stopped), WAIT).await;
    sup.terminate_child("c").await.expect("terminate c");
    panic_kernel(&sys, crash);
    for k in ["a", "b", "c"] {
        periodic_check(|| state(&sys, k) == Some(KernelState::Running), WAIT).await;
    }
    let ids: Vec<String> = sup
        .which_children()
        .await
        .expect("children")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"], "the temporary child is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_restarts_every_non_temporary_child() {
    group_restart_brings_back_children_down_on_purpose(Strategy::OneForAll, "a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_every_non_temporary_child_after_the_failed_one() {
    group_restart_brings_back_children_down_on_purpose(Strategy::RestForOne, "a").await;
}

#[tokio::test]
async fn a_zero_period_is_rejected_at_start() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("z", Strategy::OneForOne)
        .intensity(3, Duration::ZERO)
        .child(kernel(&probe, "a"));
    let r = SupervisorHandle::start(spec, sys.clone()).await;
    assert!(
        matches!(&r, Err(SupervisorError::InvalidSpec { reason, .. }) if reason.contains("max_window")),
        "{r:?}"
    );
    assert_eq!(probe.starts("a"), 0, "nothing started");
}

#[tokio::test]
async fn a_terminated_temporary_child_is_forgotten() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = SupervisorHandle::start(SupervisorSpec::new("t", Strategy::OneForOne), sys.clone())
        .await
        .expect("start");
    let tmp = || kernel(&probe, "tmp").restart(RestartType::Temporary);
    sup.start_child(tmp()).await.expect("start tmp");
    sup.terminate_child("tmp").await.expect("terminate");
    assert_eq!(sup.count_children().await.expect("count").specs, 0);
    assert!(sys.registry.get("tmp").is_none());
    assert_eq!(sup.start_child(tmp()).await, Ok(Started::Running));
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_stops_its_children_concurrently() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let stop = Shutdown::Timeout(Duration::from_millis(300));
    let dynamic = SupervisorHandle::start(
        SupervisorSpec::new("dyn", Strategy::OneForOne).max_children(100),
        sys.clone(),
    )
    .await
    .expect("start");
    for i in 0..5 {
        let name = format!("k{i}");
        probe.ignore_stop(&name);
        dynamic
            .start_child(kernel(&probe, &name).shutdown(stop))
            .await
            .expect("child");
    }
    let t0 = Instant::now();
    assert_eq!(dynamic.shutdown(WAIT).await, Ok(SupervisorExit::Normal));
    let took = t0.elapsed();
    // Each child takes its whole 300 ms timeout; one after another would be 1.5 s.
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(600),
        "{took:?}"
    );
    assert_eq!(probe.stops().len(), 5, "every stop hook ran");
}
