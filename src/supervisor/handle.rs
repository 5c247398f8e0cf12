//! [`SupervisorHandle`]: start a supervisor, call it, stop it, and learn how it ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort, SpawnErr};
use tokio::sync::watch;

use super::actor::{SupervisorActor, SupervisorArgs};
use super::msg::{SupervisorError, SupervisorMsg};
use super::spec::{ChildInfo, ChildSpec, Counts, Started, SupervisorSpec};
use crate::tree::System;

/// How a supervisor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorExit {
    /// Stopped on request, after stopping its children.
    Normal,
    /// Failed: restart intensity exceeded (the reason says which child and why). Its
    /// parent, if any, saw the failure; a root supervisor's failure is the process's.
    Failed(String),
    /// Killed without a chance to stop its children gracefully.
    Killed,
    /// Ended by itself after its significant children ended (`auto_shutdown`); the
    /// reason names the child. Not a failure: the parent sees a `shutdown`.
    AutoShutdown(String),
}

impl SupervisorExit {
    /// Whether this exit is a failure (anything but a requested stop).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            SupervisorExit::Normal | SupervisorExit::AutoShutdown(_)
        )
    }
}

/// What a supervisor actor shares with its handles.
pub(crate) struct Shared {
    exit: watch::Sender<Option<SupervisorExit>>,
    abandoned: AtomicU64,
    restarts: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            exit: watch::Sender::new(None),
            abandoned: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        })
    }

    pub(crate) fn set_exit(&self, e: SupervisorExit) {
        self.exit.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(e);
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn count_abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle to a running supervisor. Cheap to clone; every clone is the same supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    actor: ActorRef<SupervisorMsg>,
    name: Arc<str>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorHandle")
            .field("name", &self.name)
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

type SpawnFuture = Pin<Box<dyn Future<Output = Result<SupervisorHandle, SupervisorError>> + Send>>;

/// Spawns a supervisor actor (boxed, so that supervisors can start supervisors).
pub(crate) fn spawn(
    spec: SupervisorSpec,
    system: Arc<System>,
    parent: Option<ActorCell>,
) -> SpawnFuture {
    Box::pin(async move {
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let shared = Shared::new();
        let args = SupervisorArgs {
            spec,
            system,
            shared: shared.clone(),
        };
        let spawned = match parent {
            Some(p) => Actor::spawn_linked(None, SupervisorActor, args, p).await,
            None => Actor::spawn(None, SupervisorActor, args).await,
        };
        match spawned {
            Ok((actor, _join)) => Ok(SupervisorHandle {
                actor,
                name,
                shared,
            }),
            Err(SpawnErr::StartupFailed(e)) => Err(match e.downcast::<SupervisorError>() {
                Ok(inner) => *inner,
                Err(other) => SupervisorError::StartFailed {
                    id: name.to_string(),
                    reason: other.to_string(),
                },
            }),
            Err(e) => Err(SupervisorError::StartFailed {
                id: name.to_string(),
                reason: e.to_string(),
            }),
        }
    })
}

impl SupervisorHandle {
    /// Starts a root supervisor (linked to nothing) and its children, in order. Fails if
    /// a child fails to start; the children already started are then stopped.
    pub async fn start(
        spec: SupervisorSpec,
        system: Arc<System>,
    ) -> Result<SupervisorHandle, SupervisorError> {
        spawn(spec, system, None).await
    }

    /// Starts a supervisor linked to `parent`, which sees its failure as `ActorFailed`.
    pub async fn start_linked(
        spec: SupervisorSpec,
        system: Arc<System>,
        parent: ActorCell,
    ) -> Result<SupervisorHandle, SupervisorError> {
        spawn(spec, system, Some(parent)).await
    }

    /// The supervisor's actor.
    pub fn actor(&self) -> &ActorRef<SupervisorMsg> {
        &self.actor
    }

    /// The supervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, SupervisorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.actor
            .send_message(make(tx.into()))
            .map_err(|_| self.not_running())?;
        rx.await.map_err(|_| self.not_running())
    }

    fn not_running(&self) -> SupervisorError {
        SupervisorError::NotRunning(self.name.to_string())
    }

    /// Every child with its state and restart count, in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.call(SupervisorMsg::WhichChildren).await
    }

    /// Children by kind and how many run.
    pub async fn count_children(&self) -> Result<Counts, SupervisorError> {
        self.call(SupervisorMsg::CountChildren).await
    }

    /// Adds a child at the end of the start order and starts it (OTP `start_child`).
    /// A child that fails to start is not kept; `Ignored` when its start declined.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Started, SupervisorError> {
        self.call(|p| SupervisorMsg::StartChild(Box::new(spec), p))
            .await?
    }

    /// Stops a child (its shutdown policy applies); a temporary child is forgotten, any
    /// other keeps its spec (OTP `terminate_child`).
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.call(|p| SupervisorMsg::TerminateChild(id, p)).await?
    }

    /// Starts a child that is down (OTP `restart_child`): `Running` if it runs,
    /// `Restarting` while a restart is pending; a failed start leaves it down and
    /// returns the error. Not counted toward intensity.
    pub async fn restart_child(&self, id: &str) -> Result<Started, SupervisorError> {
        let id = id.to_owned();
        self.call(|p| SupervisorMsg::RestartChild(id, p)).await?
    }

    /// Restarts a child now, running or not, and waits until it runs again: a running
    /// child is taken down as by a failure (killed at once for reason
    /// `heartbeat_timeout`) and the strategy applies, counted toward intensity, with
    /// no backoff nor attempt limit; a child that is down is started as by
    /// [`SupervisorHandle::restart_child`]. Grace's own operation (OTP has none): the
    /// heartbeat monitor and an operator's "restart kernel".
    pub async fn force_restart(&self, id: &str, reason: &str) -> Result<(), SupervisorError> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.call(|p| SupervisorMsg::ForceRestart {
            id,
            reason,
            reply: Some(p),
        })
        .await?
    }

    /// A child's spec (OTP `get_childspec`).
    pub async fn get_childspec(&self, id: &str) -> Result<ChildSpec, SupervisorError> {
        let id = id.to_owned();
        self.call(|p| SupervisorMsg::GetChildspec(id, p)).await?
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.call(|p| SupervisorMsg::DeleteChild(id, p)).await?
    }

    /// The handle of a nested supervisor's current incarnation.
    pub async fn child_supervisor(&self, id: &str) -> Result<SupervisorHandle, SupervisorError> {
        let id = id.to_owned();
        self.call(|p| SupervisorMsg::ChildSupervisor(id, p)).await?
    }

    /// Stops the supervisor: its children stop in reverse start order, each with its
    /// own shutdown policy. Waits up to `timeout`; past it the supervisor is killed
    /// (and its remaining children with it).
    pub async fn shutdown(&self, timeout: Duration) -> Result<SupervisorExit, SupervisorError> {
        let cell = self.actor.get_cell();
        cell.stop(Some("shutdown".to_owned()));
        if cell.wait(Some(timeout)).await.is_err() {
            tracing::warn!(supervisor = %self.name, ?timeout, "shutdown timed out; killing");
            cell.kill();
            if cell.wait(Some(super::stop::KILL_WAIT)).await.is_err() {
                return Err(SupervisorError::NotRunning(format!(
                    "{} (did not stop within {timeout:?}, nor after a kill)",
                    self.name
                )));
            }
        }
        Ok(self.exit_now().unwrap_or(SupervisorExit::Killed))
    }

    /// Waits until the supervisor has exited and says how.
    pub async fn wait(&self) -> SupervisorExit {
        let _ = self.actor.get_cell().wait(None).await;
        self.exit_now().unwrap_or(SupervisorExit::Killed)
    }

    /// How the supervisor exited, if it has; `None` while it runs.
    pub fn exit_now(&self) -> Option<SupervisorExit> {
        if let Some(e) = self.shared.exit.borrow().clone() {
            return Some(e);
        }
        (self.actor.get_status() == ractor::ActorStatus::Stopped).then_some(SupervisorExit::Killed)
    }

    /// Children abandoned so far: they did not stop even after a kill within
    /// [`super::KILL_WAIT`] (a CPU-spinning thread), and were left behind.
    pub fn abandoned(&self) -> u64 {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Restarts this supervisor has carried out (each failure handled counts once, as
    /// toward intensity).
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }
}
