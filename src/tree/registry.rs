//! Kernels by name: their shared status, their supervisor, and their current actor.
//! Callers go through the registry, so their references stay valid across respawns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::RwLock;
use ractor::{ActorRef, ActorStatus, RpcReplyPort};
use rustc_hash::FxBuildHasher;
use serde_json::Value;

use crate::kernel::{Control, Fault, KernelMsg, KernelReply, KernelSpec, KernelStatus, Request};
use crate::supervisor::{SupervisorError, SupervisorMsg};

/// Why a call through the registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// No kernel of that name.
    #[error("no kernel named {0:?}; `grace status` lists the kernels")]
    NoSuchKernel(String),
    /// The kernel exists but is not running now.
    #[error("kernel {0} is not running")]
    NotRunning(String),
    /// The kernel did not answer in time.
    #[error("kernel {name} did not answer within {timeout:?}")]
    Timeout {
        /// The kernel.
        name: String,
        /// The wait.
        timeout: Duration,
    },
    /// The kernel answered with an error.
    #[error("kernel {name}: {reason}")]
    Kernel {
        /// The kernel.
        name: String,
        /// Its error.
        reason: String,
    },
    /// The supervisor refused.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}

/// One registered kernel.
pub struct KernelEntry {
    /// Its shared status.
    pub status: Arc<KernelStatus>,
    /// Its supervisor.
    pub supervisor: ActorRef<SupervisorMsg>,
    actor: RwLock<Option<ActorRef<KernelMsg>>>,
}

impl KernelEntry {
    /// Sets (or, with None, clears) the actor callers reach.
    pub fn set_actor(&self, actor: Option<ActorRef<KernelMsg>>) {
        *self.actor.write() = actor;
    }

    /// The current actor, if the kernel runs.
    pub fn actor(&self) -> Option<ActorRef<KernelMsg>> {
        self.actor.read().clone()
    }

    /// Sends `msg` to the current actor without cloning its reference (the heartbeat
    /// ticker's path); false if the kernel is down or its mailbox closed.
    pub fn send(&self, msg: KernelMsg) -> bool {
        self.actor
            .read()
            .as_ref()
            .is_some_and(|a| a.send_message(msg).is_ok())
    }
}

/// The live supervisor other than `supervisor` that holds `entry`, by name (or id).
fn other_holder(entry: &KernelEntry, supervisor: &ActorRef<SupervisorMsg>) -> Option<String> {
    let holder = &entry.supervisor;
    let alive = !matches!(
        holder.get_status(),
        ActorStatus::Stopping | ActorStatus::Stopped
    );
    (holder.get_id() != supervisor.get_id() && alive).then(|| {
        holder
            .get_name()
            .unwrap_or_else(|| format!("supervisor actor {}", holder.get_id()))
    })
}

/// Kernels by name.
#[derive(Default)]
pub struct Registry {
    kernels: DashMap<String, Arc<KernelEntry>, FxBuildHasher>,
    generation: AtomicU64,
}

impl Registry {
    /// Registers (or re-registers) a kernel with its status and supervisor.
    pub fn register(
        &self,
        status: Arc<KernelStatus>,
        supervisor: ActorRef<SupervisorMsg>,
    ) -> Arc<KernelEntry> {
        let entry = Arc::new(KernelEntry {
            status: status.clone(),
            supervisor,
            actor: RwLock::new(None),
        });
        self.kernels.insert(status.name.clone(), entry.clone());
        self.generation.fetch_add(1, Ordering::Release);
        entry
    }

    /// Registers kernel `spec` under `supervisor`, keeping the status of an earlier
    /// registration of the same name (a restarted supervisor's kernel keeps its counts).
    ///
    /// A name another live supervisor holds is refused (OTP: `already_started`): the
    /// error names the holder, and the entry stays with it. The name passes to a new
    /// supervisor only once its holder has stopped (a supervisor restarted by its
    /// parent takes its kernels' names back).
    pub fn register_spec(
        &self,
        spec: &KernelSpec,
        supervisor: ActorRef<SupervisorMsg>,
    ) -> Result<Arc<KernelEntry>, SupervisorError> {
        let e = match self.kernels.entry(spec.name.clone()) {
            Entry::Occupied(mut o) => {
                if let Some(holder) = other_holder(o.get(), &supervisor) {
                    return Err(SupervisorError::NameTaken {
                        name: spec.name.clone(),
                        holder,
                    });
                }
                let e = Arc::new(KernelEntry {
                    status: o.get().status.clone(),
                    supervisor,
                    actor: RwLock::new(None),
                });
                o.insert(e.clone());
                e
            }
            Entry::Vacant(v) => v
                .insert(Arc::new(KernelEntry {
                    status: Arc::new(KernelStatus::new(spec)),
                    supervisor,
                    actor: RwLock::new(None),
                }))
                .clone(),
        };
        self.generation.fetch_add(1, Ordering::Release);
        Ok(e)
    }

    /// The supervisor other than `supervisor` that holds kernel `name` now, if any.
    pub fn holder_other_than(
        &self,
        name: &str,
        supervisor: &ActorRef<SupervisorMsg>,
    ) -> Option<String> {
        self.kernels
            .get(name)
            .and_then(|e| other_holder(&e, supervisor))
    }

    /// Changes whenever a kernel is registered or removed (not when its actor changes),
    /// so that a scanner can keep its own list of entries and rebuild it only then.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records the kernel's current actor (None while it is down).
    pub fn set_actor(&self, name: &str, actor: Option<ActorRef<KernelMsg>>) {
        if let Some(e) = self.kernels.get(name) {
            e.set_actor(actor);
        }
    }

    /// Forgets a kernel.
    pub fn remove(&self, name: &str) {
        self.kernels.remove(name);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The entry of a kernel.
    pub fn get(&self, name: &str) -> Option<Arc<KernelEntry>> {
        self.kernels.get(name).map(|e| e.clone())
    }

    /// Number of registered kernels.
    pub fn len(&self) -> usize {
        self.kernels.len()
    }

    /// Whether no kernel is registered.
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty()
    }

    /// Calls `f` with every registered kernel, in no particular order, without collecting
    /// or sorting them: for scans over many kernels (heartbeats). `f` must not register or
    /// remove kernels.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<KernelEntry>)) {
        for e in self.kernels.iter() {
            f(e.value());
        }
    }

    /// The status of every kernel, sorted by name.
    pub fn statuses(&self) -> Vec<Arc<KernelStatus>> {
        let mut v: Vec<_> = self.kernels.iter().map(|e| e.status.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn entry(&self, name: &str) -> Result<Arc<KernelEntry>, TreeError> {
        self.get(name)
            .ok_or_else(|| TreeError::NoSuchKernel(name.to_owned()))
    }

    fn running(&self, name: &str) -> Result<(Arc<KernelEntry>, ActorRef<KernelMsg>), TreeError> {
        let e = self.entry(name)?;
        let a = e
            .actor()
            .ok_or_else(|| TreeError::NotRunning(name.to_owned()))?;
        Ok((e, a))
    }

    async fn ask(
        &self,
        name: &str,
        timeout: Duration,
        make: impl FnOnce(RpcReplyPort<KernelReply>) -> KernelMsg,
    ) -> Result<Value, TreeError> {
        let (entry, actor) = self.running(name)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        entry.status.note_enqueued();
        actor
            .send_message(make(tx.into()))
            .map_err(|_| TreeError::NotRunning(name.to_owned()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(reason))) => Err(TreeError::Kernel {
                name: name.to_owned(),
                reason,
            }),
            Ok(Err(_)) => Err(TreeError::NotRunning(name.to_owned())),
            Err(_) => Err(TreeError::Timeout {
                name: name.to_owned(),
                timeout,
            }),
        }
    }

    /// Sends a request and waits for the answer.
    pub async fn call(
        &self,
        name: &str,
        req: Request,
        timeout: Duration,
    ) -> Result<Value, TreeError> {
        self.ask(name, timeout, |port| KernelMsg::Request(req, Some(port)))
            .await
    }

    /// Sends a request without waiting.
    pub fn cast(&self, name: &str, req: Request) -> Result<(), TreeError> {
        let (entry, actor) = self.running(name)?;
        entry.status.note_enqueued();
        actor
            .send_message(KernelMsg::Request(req, None))
            .map_err(|_| TreeError::NotRunning(name.to_owned()))
    }

    /// Runs a control hook (health, clear_caches, shed_load, scale, stats).
    pub async fn control(
        &self,
        name: &str,
        c: Control,
        timeout: Duration,
    ) -> Result<Value, TreeError> {
        self.ask(name, timeout, |port| KernelMsg::Control(c, port))
            .await
    }

    /// Injects a fault (chaos).
    pub fn inject(&self, name: &str, fault: Fault) -> Result<(), TreeError> {
        let (entry, actor) = self.running(name)?;
        entry.status.note_enqueued();
        actor
            .send_message(KernelMsg::Fault(fault))
            .map_err(|_| TreeError::NotRunning(name.to_owned()))
    }

    async fn supervise<T>(
        &self,
        name: &str,
        timeout: Duration,
        make: impl FnOnce(RpcReplyPort<Result<T, SupervisorError>>) -> SupervisorMsg,
    ) -> Result<T, TreeError> {
        let e = self.entry(name)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        e.supervisor.send_message(make(tx.into())).map_err(|_| {
            SupervisorError::NotRunning(e.supervisor.get_name().unwrap_or_default())
        })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(r?),
            Ok(Err(_)) => Err(SupervisorError::NotRunning(name.to_owned()).into()),
            Err(_) => Err(TreeError::Timeout {
                name: name.to_owned(),
                timeout,
            }),
        }
    }

    /// Restarts a kernel through its supervisor now, running or not (the supervisor's
    /// `force_restart`), and waits until it runs again.
    pub async fn restart(
        &self,
        name: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), TreeError> {
        let id = name.to_owned();
        let reason = reason.to_owned();
        self.supervise(name, timeout, move |port| SupervisorMsg::ForceRestart {
            id,
            reason,
            reply: Some(port),
        })
        .await
    }

    /// Stops a kernel through its supervisor (it stays down until restarted).
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<(), TreeError> {
        let id = name.to_owned();
        self.supervise(name, timeout, move |port| {
            SupervisorMsg::TerminateChild(id, port)
        })
        .await
    }
}
