//! Supervisor behaviour with real kernel actors: strategies, restart types, the dynamic
//! supervisor, restart in place, explicit restarts and the events they publish.

mod supervisor_util;

use std::sync::Arc;
use std::time::Duration;

use grace::bus::Topic;
use grace::kernel::{Fault, KernelState, Request};
use grace::supervisor::{
    ChildSpec, RestartEvent, RestartType, Shutdown, Strategy, SupervisorError, SupervisorHandle,
    SupervisorSpec,
};
use grace::tree::System;
use serde_json::Value;
use supervisor_util::{actor, drain, panic_kernel, periodic_check, ping, state, system, Probe};

const WAIT: Duration = Duration::from_secs(5);

fn spec(name: &str, strategy: Strategy, probe: &Probe, kernels: &[&str]) -> SupervisorSpec {
    kernels.iter().fold(
        SupervisorSpec::new(name, strategy).intensity(100, Duration::from_secs(60)),
        |s, k| s.child(ChildSpec::kernel(probe.kernel(k))),
    )
}

fn id_of(sys: &grace::tree::System, name: &str) -> ractor::ActorId {
    actor(sys, name).expect("running").get_id()
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = SupervisorHandle::start(
        spec("s", Strategy::OneForOne, &probe, &["a", "b", "c"]),
        sys.clone(),
    )
    .await
    .expect("start");
    let (a, c) = (id_of(&sys, "a"), id_of(&sys, "c"));
    panic_kernel(&sys, "b");
    periodic_check(|| probe.starts("b") == 2, WAIT).await;
    assert_eq!(ping(&sys, "b").await.expect("b answers"), 2);
    assert_eq!((probe.starts("a"), probe.starts("c")), (1, 1));
    assert_eq!((id_of(&sys, "a"), id_of(&sys, "c")), (a, c));
    assert!(probe.stops().is_empty(), "no sibling was stopped");
    let b = sup.which_children().await.expect("children");
    assert_eq!(b[1].restarts, 1);
    assert!(b[1].last_reason.as_deref().unwrap_or("").contains("panic"));
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn one_for_all_restarts_every_child_stopping_the_others_in_reverse_order() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = SupervisorHandle::start(
        spec("s", Strategy::OneForAll, &probe, &["a", "b", "c"]),
        sys.clone(),
    )
    .await
    .expect("start");
    panic_kernel(&sys, "b");
    periodic_check(
        || ["a", "b", "c"].iter().all(|k| probe.starts(k) == 2),
        WAIT,
    )
    .await;
    assert_eq!(probe.stops(), vec!["c", "a"]);
    // Started again in start order.
    let t: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|k| probe.start_times(k)[1])
        .collect();
    assert!(t[0] <= t[1] && t[1] <= t[2]);
    for k in ["a", "b", "c"] {
        assert_eq!(ping(&sys, k).await.expect("answers"), 2);
    }
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = SupervisorHandle::start(
        spec("s", Strategy::RestForOne, &probe, &["a", "b", "c", "d"]),
        sys.clone(),
    )
    .await
    .expect("start");
    let a = id_of(&sys, "a");
    panic_kernel(&sys, "b");
    periodic_check(
        || ["b", "c", "d"].iter().all(|k| probe.starts(k) == 2),
        WAIT,
    )
    .await;
    assert_eq!(probe.starts("a"), 1);
    assert_eq!(id_of(&sys, "a"), a);
    assert_eq!(probe.stops(), vec!["d", "c"]);
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn restart_types_follow_otp() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("perm")))
        .child(ChildSpec::kernel(probe.kernel("trans")).restart(RestartType::Transient))
        .child(ChildSpec::kernel(probe.kernel("temp")).restart(RestartType::Temporary));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");

    // A normal exit (a stop): permanent restarts, transient stays down.
    actor(&sys, "perm").expect("running").stop(None);
    actor(&sys, "trans").expect("running").stop(None);
    periodic_check(|| probe.starts("perm") == 2, WAIT).await;
    periodic_check(|| state(&sys, "trans") == Some(KernelState::Stopped), WAIT).await;
    assert_eq!(probe.starts("trans"), 1);

    // An abnormal exit: transient restarts, temporary does not and is forgotten.
    sup.force_restart("trans", "operator")
        .await
        .expect("restart trans");
    panic_kernel(&sys, "trans");
    periodic_check(|| probe.starts("trans") == 3, WAIT).await;
    panic_kernel(&sys, "temp");
    periodic_check(|| sys.registry.get("temp").is_none(), WAIT).await;
    let ids: Vec<String> = sup
        .which_children()
        .await
        .expect("children")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec!["perm", "trans"]);
    assert_eq!(probe.starts("temp"), 1);
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn a_temporary_child_is_not_restarted_when_a_sibling_failure_takes_it_down() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForAll)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(probe.kernel("a")))
        .child(ChildSpec::kernel(probe.kernel("t")).restart(RestartType::Temporary))
        .child(ChildSpec::kernel(probe.kernel("c")));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    panic_kernel(&sys, "a");
    periodic_check(|| probe.starts("a") == 2 && probe.starts("c") == 2, WAIT).await;
    assert_eq!(probe.stops(), vec!["c", "t"]);
    assert_eq!(probe.starts("t"), 1);
    let counts = sup.count_children().await.expect("counts");
    assert_eq!((counts.specs, counts.active, counts.workers), (2, 2, 2));
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn dynamic_supervisor_bounds_its_children() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("dyn", Strategy::OneForOne).max_children(2),
        sys.clone(),
    )
    .await
    .expect("start");
    sup.start_child(ChildSpec::kernel(probe.kernel("a")))
        .await
        .expect("a");
    assert_eq!(
        sup.start_child(ChildSpec::kernel(probe.kernel("a"))).await,
        Err(SupervisorError::AlreadyExists("a".into()))
    );
    sup.start_child(ChildSpec::kernel(probe.kernel("b")))
        .await
        .expect("b");
    assert!(matches!(
        sup.start_child(ChildSpec::kernel(probe.kernel("c"))).await,
        Err(SupervisorError::MaxChildren { max: 2, .. })
    ));
    assert_eq!(
        sup.delete_child("a").await,
        Err(SupervisorError::StillRunning("a".into()))
    );
    sup.terminate_child("a").await.expect("terminate");
    assert_eq!(state(&sys, "a"), Some(KernelState::Stopped));
    assert!(actor(&sys, "a").is_none());
    sup.delete_child("a").await.expect("delete");
    assert!(sys.registry.get("a").is_none());
    sup.start_child(ChildSpec::kernel(probe.kernel("c")))
        .await
        .expect("room again");
    assert_eq!(ping(&sys, "c").await.expect("c answers"), 1);

    // A child that fails to start is not kept.
    probe.fail_starts(true);
    sup.delete_child("c").await.expect_err("c still runs");
    sup.terminate_child("c").await.expect("terminate c");
    sup.delete_child("c").await.expect("delete c");
    assert!(matches!(
        sup.start_child(ChildSpec::kernel(probe.kernel("d"))).await,
        Err(SupervisorError::StartFailed { .. })
    ));
    assert_eq!(sup.count_children().await.expect("counts").specs, 1);
    sup.shutdown(WAIT).await.expect("shutdown");
}

/// Supervisor "s" (one_for_one, generous intensity) over kernel "k", allowed to restart
/// in place or not.
async fn one_kernel(sys: &Arc<System>, probe: &Probe, in_place: bool) -> SupervisorHandle {
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::kernel(
            probe.kernel("k").restart_in_place(in_place),
        ));
    SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start")
}

#[tokio::test]
async fn restart_in_place_keeps_the_same_actor_and_publishes_the_restart() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let sup = one_kernel(&sys, &probe, true).await;
    let before = id_of(&sys, "k");
    panic_kernel(&sys, "k");
    assert_eq!(ping(&sys, "k").await.expect("answers after repair"), 2);
    assert_eq!(id_of(&sys, "k"), before, "same actor, same mailbox");
    periodic_check(|| sup.restarts() == 1, WAIT).await;
    let events = drain(&sys, &sub).await;
    let topics: Vec<Topic> = events.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        vec![Topic::KernelRestartInitiated, Topic::KernelRestartSuccess]
    );
    let ev: RestartEvent = serde_json::from_value(events[1].payload.clone()).expect("payload");
    assert!(ev.in_place);
    assert_eq!(
        (ev.kernel.as_str(), ev.supervisor.as_str(), ev.attempt),
        ("k", "s", 1)
    );
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_place_is_published_even_if_the_kernel_stops_before_its_note() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let sup = one_kernel(&sys, &probe, true).await;
    // Past the kernel's first poll (see supervisor_shutdown.rs).
    ping(&sys, "k").await.expect("k answers");
    sup.which_children().await.expect("supervisor answers");
    // The repair's note queues behind the spin; the stop, which goes before any
    // message, arrives during the spin.
    for (op, ms) in [("panic", 0), ("spin", 300)] {
        sys.registry
            .cast("k", Request::new(op, serde_json::json!(ms)))
            .expect("cast");
    }
    periodic_check(|| probe.spinning(), WAIT).await;
    sup.terminate_child("k").await.expect("terminate");
    assert_eq!(probe.stops(), vec!["k"]);
    let topics: Vec<Topic> = drain(&sys, &sub).await.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        vec![Topic::KernelRestartInitiated, Topic::KernelRestartSuccess]
    );
    sup.shutdown(WAIT).await.expect("shutdown");
}

/// A panic in a kernel's own handler: the caller is answered with the panic, and the
/// kernel is repaired in place (`in_place`) or respawned.
async fn handler_panic(in_place: bool) {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let sup = one_kernel(&sys, &probe, in_place).await;
    let before = id_of(&sys, "k");
    let err = sys
        .registry
        .call("k", Request::new("panic", Value::Null), WAIT)
        .await
        .expect_err("a panic answers with an error");
    assert!(err.to_string().contains("panic: asked to panic"), "{err}");
    periodic_check(|| sup.restarts() == 1, WAIT).await;
    assert_eq!(ping(&sys, "k").await.expect("answers after the restart"), 2);
    assert_eq!(id_of(&sys, "k") == before, in_place);
    let status = sys.registry.get("k").expect("registered").status.clone();
    assert_eq!(status.restarts(), 1);
    assert_eq!(
        status.last_reason().as_deref(),
        Some("panic: asked to panic")
    );
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn a_handler_panic_answers_the_caller_and_is_repaired_in_place() {
    handler_panic(true).await;
}

#[tokio::test]
async fn a_handler_panic_answers_the_caller_and_respawns_the_kernel() {
    handler_panic(false).await;
}

#[tokio::test]
async fn restarts_publish_initiated_then_success_with_their_latency() {
    let (sys, _dir) = system();
    let sub = sys.bus.subscribe("test", &["kernel.restart.*"]);
    let probe = Probe::default();
    let sup = SupervisorHandle::start(spec("s", Strategy::OneForOne, &probe, &["k"]), sys.clone())
        .await
        .expect("start");
    panic_kernel(&sys, "k");
    periodic_check(|| probe.starts("k") == 2, WAIT).await;
    periodic_check(|| sys.bus.stats().published >= 2, WAIT).await;
    let events = drain(&sys, &sub).await;
    let topics: Vec<Topic> = events.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        vec![Topic::KernelRestartInitiated, Topic::KernelRestartSuccess]
    );
    let done: RestartEvent = serde_json::from_value(events[1].payload.clone()).expect("payload");
    assert_eq!(done.kernel, "k");
    assert_eq!(done.supervisor, "s");
    assert_eq!(done.attempt, 1);
    assert!(done.reason.contains("injected panic"), "{}", done.reason);
    assert!(done.latency_us.is_some());
    assert_eq!(events[1].component.as_deref(), Some("k"));
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn heartbeat_timeout_restart_kills_a_hung_kernel_at_once() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    // A graceful stop would wait a minute: the hung kernel must be killed instead.
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(
            ChildSpec::kernel(probe.kernel("k"))
                .shutdown(Shutdown::Timeout(Duration::from_secs(60))),
        );
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    let hung = actor(&sys, "k").expect("running");
    sys.registry.inject("k", Fault::Hang).expect("inject");
    let t0 = std::time::Instant::now();
    sys.registry
        .restart("k", "heartbeat_timeout", WAIT)
        .await
        .expect("restarted");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        t0.elapsed()
    );
    assert_ne!(id_of(&sys, "k"), hung.get_id());
    assert_eq!(ping(&sys, "k").await.expect("answers"), 2);
    let info = &sup.which_children().await.expect("children")[0];
    assert_eq!(info.last_reason.as_deref(), Some("heartbeat_timeout"));
    // The killed incarnation's late exit is not taken for a failure of the new one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(probe.starts("k"), 2);
    assert_eq!(sup.restarts(), 1);
    assert!(probe.stops().is_empty(), "killed, not stopped gracefully");
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn nested_supervisors_are_reachable_and_restarted_as_children() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let inner = spec("inner", Strategy::OneForOne, &probe, &["k"]);
    let root = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::supervisor(inner));
    let sup = SupervisorHandle::start(root, sys.clone())
        .await
        .expect("start");
    let inner = sup.child_supervisor("inner").await.expect("inner");
    assert_eq!(inner.count_children().await.expect("counts").active, 1);
    inner.actor().kill();
    periodic_check(|| probe.starts("k") == 2, WAIT).await;
    let again = sup.child_supervisor("inner").await.expect("inner again");
    assert_ne!(again.actor().get_id(), inner.actor().get_id());
    let info = &sup.which_children().await.expect("children")[0];
    assert_eq!((info.kind, info.restarts), ("supervisor", 1));
    assert_eq!(ping(&sys, "k").await.expect("answers"), 2);
    sup.shutdown(WAIT).await.expect("shutdown");
}
