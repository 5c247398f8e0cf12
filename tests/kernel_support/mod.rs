//! Shared helpers of the kernel tests: a system over a temporary state directory, a
//! parent actor standing in for a supervisor that records what reaches it, a polling
//! helper, and a small test kernel.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use grace::config::Config;
use grace::kernel::{
    spawn_kernel, Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, KernelState,
    KernelStatus, Request,
};
use grace::state::StatePaths;
use grace::supervisor::SupervisorMsg;
use grace::tree::System;
use parking_lot::Mutex;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::{json, Value};

/// A system over `dir` with `config`.
pub fn system_with(dir: &std::path::Path, config: Config) -> Arc<System> {
    System::open(Arc::new(config), StatePaths::new(dir)).expect("system")
}

/// A system over `dir` with the default configuration.
pub fn system(dir: &std::path::Path) -> Arc<System> {
    system_with(dir, Config::default())
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What reached the parent.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A child failed, with its reason.
    Failed(ActorId, String),
    /// A child stopped (or was killed), with its reason.
    Terminated(ActorId, Option<String>),
    /// A kernel asked for a restart of a child.
    Restart(String, String),
}

/// A stand-in supervisor: records supervision events and requests. Restart requests are
/// answered after `restart_delay` (never, if None).
pub struct Parent;

pub struct ParentState {
    seen: Arc<Mutex<Vec<Seen>>>,
    held: Vec<ractor::RpcReplyPort<Result<(), grace::supervisor::SupervisorError>>>,
    answer_restarts: bool,
}

impl Actor for Parent {
    type Msg = SupervisorMsg;
    type State = ParentState;
    type Arguments = (Arc<Mutex<Vec<Seen>>>, bool);

    async fn pre_start(
        &self,
        _me: ActorRef<SupervisorMsg>,
        (seen, answer_restarts): Self::Arguments,
    ) -> Result<ParentState, ActorProcessingErr> {
        Ok(ParentState {
            seen,
            held: Vec::new(),
            answer_restarts,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut ParentState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisorMsg::ForceRestart { id, reason, reply } = msg {
            st.seen.lock().push(Seen::Restart(id, reason));
            if let Some(port) = reply {
                if st.answer_restarts {
                    let _ = port.send(Ok(()));
                } else {
                    st.held.push(port);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut ParentState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(who, err) => {
                st.seen
                    .lock()
                    .push(Seen::Failed(who.get_id(), err.to_string()));
            }
            SupervisionEvent::ActorTerminated(who, _, reason) => {
                st.seen.lock().push(Seen::Terminated(who.get_id(), reason));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A parent and what it saw.
pub struct Harness {
    pub parent: ActorRef<SupervisorMsg>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub system: Arc<System>,
}

impl Harness {
    /// A parent that answers restart requests at once when `answer_restarts`.
    pub async fn new(system: Arc<System>, answer_restarts: bool) -> Harness {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (parent, _) = Actor::spawn(None, Parent, (seen.clone(), answer_restarts))
            .await
            .expect("parent");
        Harness {
            parent,
            seen,
            system,
        }
    }

    /// Starts a kernel under the parent; returns its actor and status.
    pub async fn spawn(
        &self,
        spec: &KernelSpec,
    ) -> Result<(ActorRef<KernelMsg>, Arc<KernelStatus>), KernelError> {
        let status = Arc::new(KernelStatus::new(spec));
        let actor = spawn_kernel(
            spec,
            status.clone(),
            self.system.clone(),
            self.parent.clone(),
        )
        .await?;
        // As a supervisor does once the actor is reachable.
        status.set_state(KernelState::Running);
        Ok((actor, status))
    }

    /// Starts a kernel and registers it, as a supervisor would.
    pub async fn spawn_registered(
        &self,
        spec: &KernelSpec,
    ) -> (ActorRef<KernelMsg>, Arc<KernelStatus>) {
        let (actor, status) = self.spawn(spec).await.expect("kernel starts");
        self.system
            .registry
            .register(status.clone(), self.parent.clone());
        self.system
            .registry
            .set_actor(&spec.name, Some(actor.clone()));
        (actor, status)
    }

    /// What the parent saw about `id`.
    pub fn seen_of(&self, id: ActorId) -> Vec<Seen> {
        self.seen
            .lock()
            .iter()
            .filter(|s| match s {
                Seen::Failed(i, _) | Seen::Terminated(i, _) => *i == id,
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// Waits for the exit of `id` and returns it.
    pub async fn exit_of(&self, id: ActorId, timeout: Duration) -> Seen {
        eventually(timeout, "the kernel's exit to reach its parent", || {
            !self.seen_of(id).is_empty()
        })
        .await;
        self.seen_of(id).remove(0)
    }
}

/// Sends a request and waits for the answer.
pub async fn call(actor: &ActorRef<KernelMsg>, op: &str, args: Value) -> Result<Value, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    actor
        .send_message(KernelMsg::Request(Request::new(op, args), Some(tx.into())))
        .expect("send");
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("answer in time")
        .expect("reply port kept")
}

/// Runs a control hook and waits for the answer.
pub async fn control(
    actor: &ActorRef<KernelMsg>,
    c: grace::kernel::Control,
) -> Result<Value, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    actor
        .send_message(KernelMsg::Control(c, tx.into()))
        .expect("send");
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("answer in time")
        .expect("reply port kept")
}

/// Counters a [`TestKernel`] shares with its test.
#[derive(Default)]
pub struct Probe {
    pub ticks: AtomicU64,
    pub stopped: AtomicBool,
    pub spinning: AtomicBool,
}

/// A kernel for tests: counts ticks; `where` answers its thread's name; `sleep` awaits
/// `ms` milliseconds (a slow call); `spin` busy-loops for `ms` milliseconds without
/// awaiting (a stuck computation).
pub struct TestKernel(pub Arc<Probe>);

#[async_trait]
impl Kernel for TestKernel {
    async fn handle(&mut self, req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "where" => Ok(json!({
                "thread": std::thread::current().name(),
                "id": format!("{:?}", std::thread::current().id()),
            })),
            "sleep" => {
                let ms = req.args.as_u64().unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Value::Null)
            }
            "spin" => {
                let ms = req.args.as_u64().unwrap_or(1000);
                self.0.spinning.store(true, Ordering::SeqCst);
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                self.0.spinning.store(false, Ordering::SeqCst);
                Ok(Value::Null)
            }
            _ => Ok(Value::Null),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        self.0.ticks.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn stop(&mut self, _ctx: &KernelContext) {
        self.0.stopped.store(true, Ordering::SeqCst);
    }
}

/// A spec for a [`TestKernel`] sharing `probe`.
pub fn test_spec(name: &str, probe: &Arc<Probe>) -> KernelSpec {
    let p = probe.clone();
    KernelSpec::new(
        name,
        Arc::new(move || Box::new(TestKernel(p.clone())) as Box<dyn Kernel>),
    )
}

/// Names of this process's threads (`/proc/self/task/*/comm`).
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("proc")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Whether this process has a thread named `name` (as the kernel cuts it: 15 bytes).
pub fn has_thread(name: &str) -> bool {
    let cut = &name[..name.len().min(15)];
    thread_names().iter().any(|n| n == cut)
}

/// Processes in process group `pgid`: (pid, ppid, state) from `/proc/*/stat`.
pub fn group_members(pgid: i32) -> Vec<(i32, i32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[2].parse::<i32>().ok() == Some(pgid) {
            let state = f[0].chars().next().unwrap_or('?');
            out.push((pid, f[1].parse().unwrap_or(0), state));
        }
    }
    out
}
