//! Hang detection proportional to the work in progress for thread and process kernels,
//! under a real supervisor, in real time with short timeouts (a thread kernel runs on a
//! runtime of its own, whose clock cannot be paused with the test's): a handler that
//! never returns is found within its timeout plus one check interval and restarted; a
//! long handler that beats is not hung; an idle kernel is neither ticked nor hung.

mod hang_support;
mod kernel_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use grace::config::HeartbeatConfig;
use grace::kernel::exec::{ExecKernel, ExecOptions};
use grace::kernel::{Fault, Isolation, KernelSpec, KernelStatus, Request};
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::{spawn_heartbeat, HeartbeatHandle, System};
use hang_support::*;
use kernel_support::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_millis(400);
const CHECK: Duration = Duration::from_millis(50);
/// The tick interval of the ticking (process) kernel.
const TICK: Duration = Duration::from_millis(50);
/// Scheduling on a loaded machine, on top of the bound.
const SLACK: Duration = Duration::from_millis(250);
const WAIT: Duration = Duration::from_secs(10);

struct Tree {
    system: Arc<System>,
    _sup: SupervisorHandle,
    _hb: HeartbeatHandle,
    status: Arc<KernelStatus>,
}

async fn tree(dir: &std::path::Path, spec: KernelSpec) -> Tree {
    let system = system(dir);
    let name = spec.name.clone();
    let sup = SupervisorSpec::new("kernels", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(ChildSpec::kernel(spec));
    let sup = SupervisorHandle::start(sup, system.clone())
        .await
        .expect("supervisor starts");
    let hb = spawn_heartbeat(
        system.clone(),
        HeartbeatConfig {
            check_interval: CHECK,
            auto_restart: true,
            ..HeartbeatConfig::default()
        },
    );
    let status = system
        .registry
        .get(&name)
        .expect("registered")
        .status
        .clone();
    Tree {
        system,
        _sup: sup,
        _hb: hb,
        status,
    }
}

impl Tree {
    /// Injects a hang and checks it is found in time and the kernel restarted.
    async fn hang_is_found(&self, name: &str) {
        let sub = self
            .system
            .bus
            .subscribe("test", &["kernel.heartbeat.missed"]);
        self.system
            .registry
            .inject(name, Fault::Hang)
            .expect("inject");
        let (took, m) = next_missed(&self.system, &sub, WAIT)
            .await
            .expect("the hang is found");
        // A ticking kernel's silence counts from its last beat, up to one tick
        // interval before the hang.
        assert!(
            took + TICK >= TIMEOUT && took <= TIMEOUT + CHECK + SLACK,
            "{took:?}"
        );
        assert_eq!(m.kernel, name);
        let status = self.status.clone();
        eventually(WAIT, "the restart", || {
            status.restarts() == 1 && status.state().is_up()
        })
        .await;
        assert_eq!(status.last_reason().as_deref(), Some("heartbeat_timeout"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_kernel_idle_long_beating_and_hung() {
    let dir = tempfile::tempdir().expect("tempdir");
    let knobs = Arc::new(Knobs::default());
    let spec = quiet("thr", &knobs, false, TIMEOUT).isolation(Isolation::Thread);
    let t = tree(dir.path(), spec).await;
    let sub = t.system.bus.subscribe("test", &["kernel.heartbeat.missed"]);

    // Idle for five timeouts: no tick, no message, no hang.
    assert!(next_missed(&t.system, &sub, 5 * TIMEOUT).await.is_none());
    assert_eq!(knobs.ticks.load(Ordering::SeqCst), 0);
    assert_eq!(t.status.messages(), 0);

    // Works for four timeouts, beating every 100 ms: not hung.
    let work = json!({ "ms": 1600, "every": 100 });
    let r = t
        .system
        .registry
        .call("thr", Request::new("work", work), WAIT)
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(next_missed(&t.system, &sub, CHECK * 2).await.is_none());
    assert_eq!(t.status.restarts(), 0);

    t.hang_is_found("thr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_kernel_hung_handler_is_found_and_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ExecOptions::new("sleep").args(["600"]);
    let spec = KernelSpec::new("proc", ExecKernel::factory(opts))
        .isolation(Isolation::Process)
        .heartbeat(TICK, TIMEOUT);
    let t = tree(dir.path(), spec).await;
    let sub = t.system.bus.subscribe("test", &["kernel.heartbeat.missed"]);

    // Ticked (it watches its child) and beating: not hung over five timeouts.
    let ticked = t.status.messages();
    assert!(next_missed(&t.system, &sub, 5 * TIMEOUT).await.is_none());
    assert!(t.status.messages() > ticked + 10, "ticked");

    t.hang_is_found("proc").await;
}
