//! Ordered shutdown: children stop in reverse start order, each by its shutdown policy;
//! a kernel that ignores its stop is killed after its timeout, and one that does not
//! even die of a kill is abandoned rather than waited on forever.

mod supervisor_util;

use std::time::Duration;

use grace::kernel::{KernelState, Request};
use grace::supervisor::{
    ChildSpec, Shutdown, Strategy, SupervisorExit, SupervisorHandle, SupervisorSpec, KILL_WAIT,
};
use serde_json::json;
use supervisor_util::{actor, periodic_check, ping, state, system, Probe};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(start_paused = true)]
async fn children_stop_in_reverse_order_and_a_stubborn_one_is_killed_after_its_timeout() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    probe.ignore_stop("b");
    let inner = SupervisorSpec::new("inner", Strategy::OneForOne)
        .child(ChildSpec::kernel(probe.kernel("c")))
        .child(ChildSpec::kernel(probe.kernel("d")));
    let s = SupervisorSpec::new("root", Strategy::OneForOne)
        .child(ChildSpec::kernel(probe.kernel("a")))
        .child(
            ChildSpec::kernel(probe.kernel("b"))
                .shutdown(Shutdown::Timeout(Duration::from_secs(3))),
        )
        .child(ChildSpec::supervisor(inner))
        .child(ChildSpec::kernel(probe.kernel("e")).shutdown(Shutdown::BrutalKill));
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    let b = actor(&sys, "b").expect("b runs");

    let t0 = tokio::time::Instant::now();
    let exit = sup.shutdown(WAIT).await.expect("shutdown");
    assert_eq!(exit, SupervisorExit::Normal);
    // e is killed (no stop hook), the nested supervisor stops its own children in
    // reverse, b's hook never returns and b is killed after 3 s, then a.
    assert_eq!(probe.stops(), vec!["d", "c", "b", "a"]);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(b.get_status(), ractor::ActorStatus::Stopped);
    for k in ["a", "b", "c", "d", "e"] {
        assert_eq!(state(&sys, k), Some(KernelState::Stopped), "{k}");
        assert!(actor(&sys, k).is_none(), "{k}");
    }
    assert_eq!(sup.abandoned(), 0);
}

#[tokio::test(start_paused = true)]
async fn terminate_child_kills_a_kernel_that_ignores_its_stop() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    probe.ignore_stop("k");
    let s = SupervisorSpec::new("s", Strategy::OneForOne).child(
        ChildSpec::kernel(probe.kernel("k")).shutdown(Shutdown::Timeout(Duration::from_secs(5))),
    );
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    let k = actor(&sys, "k").expect("runs");
    let t0 = tokio::time::Instant::now();
    sup.terminate_child("k").await.expect("terminate");
    assert!(t0.elapsed() >= Duration::from_secs(5));
    assert_eq!(k.get_status(), ractor::ActorStatus::Stopped);
    // Its exit ("killed") came from an actor no longer tracked: not restarted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.starts("k"), 1);
    assert_eq!(state(&sys, "k"), Some(KernelState::Stopped));
    sup.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_that_survives_its_kill_is_abandoned_not_waited_on() {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let s = SupervisorSpec::new("s", Strategy::OneForOne)
        .child(ChildSpec::kernel(probe.kernel("ok")))
        .child(
            ChildSpec::kernel(probe.kernel("spin"))
                .shutdown(Shutdown::Timeout(Duration::from_millis(100))),
        );
    let sup = SupervisorHandle::start(s, sys.clone())
        .await
        .expect("start");
    // The spin must not start in the kernel's first poll: that poll reports the start
    // to the supervisor, whose task is then queued in the slot tokio keeps for the task
    // woken last on that worker, which no other worker may take; a spin in the same poll
    // would hold the supervisor with it. A kernel that answered a call has had its first
    // poll, and a supervisor that answered one has handled that report.
    ping(&sys, "spin").await.expect("spin kernel answers");
    sup.which_children().await.expect("supervisor answers");
    // A CPU spin never reaches an await: neither the stop nor the kill is seen.
    // Long enough that no scheduling delay lets it end by itself during the shutdown;
    // released once the test has its answer.
    let spin = KILL_WAIT + Duration::from_secs(30);
    sys.registry
        .cast("spin", Request::new("spin", json!(spin.as_millis() as u64)))
        .expect("cast");
    periodic_check(|| probe.spinning(), Duration::from_secs(1)).await;
    let t0 = std::time::Instant::now();
    let exit = sup
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    let took = t0.elapsed();
    assert_eq!(exit, SupervisorExit::Normal);
    assert!(
        // Bounded by the kill wait, not by the spin.
        took >= KILL_WAIT && took < spin,
        "{took:?}"
    );
    let abandoned = sup.abandoned();
    probe.release_spin();
    assert_eq!(abandoned, 1);
    assert_eq!(
        probe.stops(),
        vec!["ok"],
        "the other child still stopped gracefully"
    );
}
