//! The hang → restart path end to end, for each isolation: a real supervisor, the
//! heartbeat ticker and monitor, and a kernel that stops proving it is alive. The monitor
//! publishes `kernel.heartbeat.missed` and asks the supervisor for a restart; the kernel
//! runs again, answering through the same registry name.

mod kernel_support;

use std::sync::Arc;
use std::time::Duration;

use grace::bus::Topic;
use grace::config::HeartbeatConfig;
use grace::kernel::exec::{ExecKernel, ExecOptions, Probe as ExecProbe};
use grace::kernel::thread::kernel_threads;
use grace::kernel::{Control, Fault, Isolation, KernelSpec, KernelStatus, Request};
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::{spawn_heartbeat, HeartbeatHandle, System};
use kernel_support::*;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::json;

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
            check_interval: Duration::from_millis(50),
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
    /// Waits for the restart and the `kernel.heartbeat.missed` event that caused it.
    async fn restarted(&self, sub: &grace::bus::Subscription) {
        let status = self.status.clone();
        eventually(WAIT, "a restart", || {
            status.restarts() == 1 && status.state().is_up()
        })
        .await;
        assert_eq!(status.last_reason().as_deref(), Some("heartbeat_timeout"));
        self.system.bus.pump(1024, Duration::from_millis(1)).await;
        let e = sub.try_recv().expect("kernel.heartbeat.missed");
        assert_eq!(e.topic, Topic::KernelHeartbeatMissed);
        assert_eq!(e.payload["kernel"], status.name.as_str());
    }
}

fn fast(spec: KernelSpec) -> KernelSpec {
    spec.heartbeat(Duration::from_millis(50), Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_task_kernel_is_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = Arc::new(Probe::default());
    let t = tree(dir.path(), fast(test_spec("hang-task", &probe))).await;
    let sub = t.system.bus.subscribe("test", &["kernel.heartbeat.missed"]);
    let before = t.system.registry.get("hang-task").and_then(|e| e.actor());

    t.system
        .registry
        .inject("hang-task", Fault::Hang)
        .expect("inject");
    t.restarted(&sub).await;
    let after = t.system.registry.get("hang-task").and_then(|e| e.actor());
    assert_ne!(before.map(|a| a.get_id()), after.map(|a| a.get_id()));
    let r = t
        .system
        .registry
        .call("hang-task", Request::new("where", json!(null)), WAIT)
        .await;
    assert!(r.is_ok(), "answers again: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_thread_kernel_is_replaced_and_its_thread_abandoned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = Arc::new(Probe::default());
    let spec = fast(test_spec("hang-thr", &probe)).isolation(Isolation::Thread);
    let t = tree(dir.path(), spec).await;
    let sub = t.system.bus.subscribe("test", &["kernel.heartbeat.missed"]);
    let abandoned = kernel_threads().abandoned_total;

    t.system
        .registry
        .inject("hang-thr", Fault::Spin(Duration::from_millis(2500)))
        .expect("inject");
    t.restarted(&sub).await;
    // The new incarnation answers on a new thread while the old one still spins.
    let r = t
        .system
        .registry
        .call("hang-thr", Request::new("where", json!(null)), WAIT)
        .await
        .expect("answers again");
    assert_eq!(r["thread"], "kernel-hang-thr");
    eventually(WAIT, "the stuck thread to be counted", || {
        kernel_threads().abandoned_total > abandoned
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_exec_child_fails_its_probe_and_is_killed_and_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hb = dir.path().join("hb");
    let hb = hb.to_str().expect("utf8");
    // The child stamps a heartbeat file; the probe checks it is fresh (under 0.5 s).
    let script = format!("while :; do date +%s%N > {hb}.tmp && mv {hb}.tmp {hb}; sleep 0.05; done");
    let check = format!("test $(( $(date +%s%N) - $(cat {hb}) )) -lt 500000000");
    let opts = ExecOptions::new("sh").args(["-c", script.as_str()]).probe(
        ExecProbe::Command(vec!["sh".into(), "-c".into(), check]),
        Duration::from_secs(1),
    );
    let spec = KernelSpec::new("hang-exec", ExecKernel::factory(opts))
        .isolation(Isolation::Process)
        .heartbeat(Duration::from_millis(100), Duration::from_millis(800));
    let t = tree(dir.path(), spec).await;
    let sub = t.system.bus.subscribe("test", &["kernel.heartbeat.missed"]);
    let pid_of = |t: &Tree| {
        let sys = t.system.clone();
        async move {
            let s = sys
                .registry
                .control("hang-exec", Control::Stats, WAIT)
                .await
                .expect("stats");
            s["pid"].as_i64().expect("pid") as i32
        }
    };
    let old = pid_of(&t).await;
    let status = t.status.clone();
    let ticked = status.messages();
    eventually(WAIT, "healthy ticks", || status.messages() > ticked + 3).await;
    assert_eq!(
        status.restarts(),
        0,
        "a fresh heartbeat file passes the probe"
    );

    killpg(Pid::from_raw(old), Signal::SIGSTOP).expect("SIGSTOP");
    t.restarted(&sub).await;
    let new = pid_of(&t).await;
    assert_ne!(new, old);
    eventually(WAIT, "the stopped group to be gone", || {
        group_members(old)
            .iter()
            .all(|&(_, ppid, state)| state == 'Z' && ppid != std::process::id() as i32)
    })
    .await;
}
