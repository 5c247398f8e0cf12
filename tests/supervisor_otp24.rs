//! What OTP 24 added to supervisors: significant children and `auto_shutdown`, a start
//! that returns `ignore`, and `get_childspec`.

mod supervisor_util;

use std::time::Duration;

use grace::kernel::{KernelState, Request};
use grace::supervisor::{
    AutoShutdown, ChildSpec, RestartType, Started, Strategy, SupervisorError, SupervisorExit,
    SupervisorHandle, SupervisorSpec,
};
use grace::tree::System;
use serde_json::Value;
use supervisor_util::{panic_kernel, periodic_check, state, system, Probe, StartPlan};

const WAIT: Duration = Duration::from_secs(5);

fn kernel(probe: &Probe, name: &str) -> ChildSpec {
    ChildSpec::kernel(probe.kernel(name))
}

fn significant(probe: &Probe, name: &str, restart: RestartType) -> ChildSpec {
    kernel(probe, name).restart(restart).significant(true)
}

fn exit_normally(sys: &System, name: &str) {
    sys.registry
        .cast(name, Request::new("exit", Value::Null))
        .expect("cast exit");
}

async fn exited(sup: &SupervisorHandle) -> SupervisorExit {
    tokio::time::timeout(WAIT, sup.wait())
        .await
        .expect("the supervisor ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_significant_ends_the_supervisor_when_its_main_kernel_ends() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("app", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(kernel(&probe, "helper"))
        .child(significant(&probe, "main", RestartType::Transient));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    // An abnormal exit of a transient significant child is restarted as usual.
    panic_kernel(&sys, "main");
    periodic_check(|| probe.starts("main") == 2, WAIT).await;
    assert!(sup.exit_now().is_none());
    // Being terminated by the supervisor is not ending by itself.
    sup.terminate_child("main").await.expect("terminate");
    sup.restart_child("main").await.expect("restart");
    assert!(sup.exit_now().is_none());
    // Its normal exit ends the supervisor, which stops the rest.
    exit_normally(&sys, "main");
    let exit = exited(&sup).await;
    assert!(
        matches!(&exit, SupervisorExit::AutoShutdown(r) if r.contains("main")),
        "{exit:?}"
    );
    assert!(!exit.is_failure());
    assert_eq!(
        probe.stops().last().map(String::as_str),
        Some("helper"),
        "the helper was stopped gracefully, after main ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_significant_waits_for_the_last_significant_child() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("batch", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(significant(&probe, "job1", RestartType::Temporary))
        .child(significant(&probe, "job2", RestartType::Temporary));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    exit_normally(&sys, "job1");
    // A temporary child that ended is forgotten.
    periodic_check(|| sys.registry.get("job1").is_none(), WAIT).await;
    assert_eq!(sup.count_children().await.expect("count").specs, 1);
    assert!(sup.exit_now().is_none(), "job2 still runs");
    // A temporary significant child ends it whatever its exit.
    panic_kernel(&sys, "job2");
    assert!(matches!(
        exited(&sup).await,
        SupervisorExit::AutoShutdown(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_shutdown_is_a_normal_exit_to_the_parent() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let inner = |name: &str, main: &str| {
        SupervisorSpec::new(name, Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(significant(&probe, main, RestartType::Transient))
    };
    let root = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(3600))
        .child(ChildSpec::supervisor(inner("transient_sup", "m1")).restart(RestartType::Transient))
        .child(ChildSpec::supervisor(inner("permanent_sup", "m2")));
    let sup = SupervisorHandle::start(root, sys.clone())
        .await
        .expect("start");
    exit_normally(&sys, "m1");
    exit_normally(&sys, "m2");
    // The permanent one is restarted (its kernel starts again); the transient one not.
    periodic_check(|| probe.starts("m2") == 2, WAIT).await;
    let kids = sup.which_children().await.expect("children");
    let st = |id: &str| kids.iter().find(|c| c.id == id).map(|c| c.state);
    assert_eq!(st("transient_sup"), Some(KernelState::Stopped));
    assert_eq!(st("permanent_sup"), Some(KernelState::Running));
    assert_eq!(probe.starts("m1"), 1);
    assert!(sup.exit_now().is_none());
}

#[tokio::test]
async fn significance_is_validated_as_otp_does() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let permanent = SupervisorSpec::new("p", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(significant(&probe, "a", RestartType::Permanent));
    let r = SupervisorHandle::start(permanent, sys.clone()).await;
    assert!(
        matches!(r, Err(SupervisorError::InvalidSpec { .. })),
        "{r:?}"
    );
    let never = SupervisorSpec::new("n", Strategy::OneForOne).child(significant(
        &probe,
        "b",
        RestartType::Transient,
    ));
    let r = SupervisorHandle::start(never, sys.clone()).await;
    assert!(
        matches!(r, Err(SupervisorError::InvalidSpec { .. })),
        "{r:?}"
    );
    let plain = SupervisorHandle::start(SupervisorSpec::new("x", Strategy::OneForOne), sys)
        .await
        .expect("start");
    let r = plain
        .start_child(significant(&probe, "c", RestartType::Temporary))
        .await;
    assert!(
        matches!(r, Err(SupervisorError::InvalidSpec { .. })),
        "{r:?}"
    );
    assert_eq!(probe.starts("a") + probe.starts("b") + probe.starts("c"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_returns_ignore_keeps_the_spec_without_running() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let ignore = StartPlan {
        ignore: true,
        ..StartPlan::default()
    };
    probe.plan_starts("lazy", ignore.clone());
    probe.plan_starts("once", ignore);
    let spec = SupervisorSpec::new("s", Strategy::OneForOne)
        .child(kernel(&probe, "lazy"))
        .child(kernel(&probe, "once").restart(RestartType::Temporary));
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start");
    let kids = sup.which_children().await.expect("children");
    assert_eq!(
        kids.len(),
        1,
        "an ignored temporary child is not kept: {kids:?}"
    );
    assert_eq!(kids[0].state, KernelState::Stopped);
    assert_eq!(kids[0].last_reason.as_deref(), Some("ignored"));
    assert_eq!(sup.count_children().await.expect("count").active, 0);
    // Still ignoring: restart_child answers Ignored; then it runs.
    assert_eq!(sup.restart_child("lazy").await, Ok(Started::Ignored));
    probe.plan_starts("lazy", StartPlan::default());
    assert_eq!(sup.restart_child("lazy").await, Ok(Started::Running));
    assert_eq!(state(&sys, "lazy"), Some(KernelState::Running));
    // start_child of a child that declines: kept, not running.
    probe.plan_starts(
        "later",
        StartPlan {
            ignore: true,
            ..StartPlan::default()
        },
    );
    assert_eq!(
        sup.start_child(kernel(&probe, "later")).await,
        Ok(Started::Ignored)
    );
    assert_eq!(sup.count_children().await.expect("count").specs, 2);
}

#[tokio::test]
async fn get_childspec_returns_the_spec() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let spec = SupervisorSpec::new("s", Strategy::OneForOne)
        .child(kernel(&probe, "a").restart(RestartType::Transient));
    let sup = SupervisorHandle::start(spec, sys).await.expect("start");
    let got = sup.get_childspec("a").await.expect("spec");
    assert_eq!(got.id, "a");
    assert_eq!(got.restart, RestartType::Transient);
    assert_eq!(
        sup.get_childspec("nope").await.err(),
        Some(SupervisorError::NoSuchChild("nope".into()))
    );
}
