//! Thread isolation: a kernel's actor on its own OS thread and current-thread runtime,
//! behind a proxy actor on the caller's runtime.
//!
//! The supervisor links to the proxy, never to the thread's actor. Stopping the proxy
//! stops the kernel and waits for its thread; killing the proxy ends it at once, even
//! when the kernel's thread spins on the CPU and cannot be preempted. Such a thread is
//! then *abandoned*: it is told to die (it will, at its next await), counted, and left
//! running. Past `[kernels] max_abandoned_threads` abandoned threads alive at once, serve
//! asks the watchdog to replace the whole process, the only way to reclaim them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use super::actor::{start_error, KernelActor, KernelArgs};
use super::api::{KernelError, KernelMsg};
use crate::tree::System;

/// How long a killed kernel thread has to end before it counts as abandoned.
pub const ABANDON_GRACE: Duration = Duration::from_secs(1);

/// Kernel threads of this process, for the supervisor, the dashboard and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ThreadCounts {
    /// Kernel threads alive now (abandoned ones included).
    pub live: usize,
    /// Threads alive now that were killed and did not end: stuck, left running.
    pub abandoned: usize,
    /// Threads abandoned since the process started (some may have ended since).
    pub abandoned_total: u64,
}

static COUNTS: Mutex<ThreadCounts> = parking_lot::const_mutex(ThreadCounts {
    live: 0,
    abandoned: 0,
    abandoned_total: 0,
});

/// The kernel threads of this process: live and abandoned.
pub fn kernel_threads() -> ThreadCounts {
    *COUNTS.lock()
}

/// One kernel thread's place in the counts. Its flags change only under the `COUNTS`
/// lock, so the counts always agree with them.
#[derive(Default)]
struct Slot {
    done: AtomicBool,
    abandoned: AtomicBool,
}

impl Slot {
    fn started() -> Arc<Slot> {
        COUNTS.lock().live += 1;
        Arc::new(Slot::default())
    }

    fn finished(&self) {
        let mut c = COUNTS.lock();
        c.live = c.live.saturating_sub(1);
        if self.abandoned.load(Ordering::Relaxed) {
            c.abandoned = c.abandoned.saturating_sub(1);
        }
        self.done.store(true, Ordering::Relaxed);
    }

    /// Counts the thread as abandoned unless it ended; returns the number abandoned now.
    fn abandon(&self) -> Option<usize> {
        let mut c = COUNTS.lock();
        if self.done.load(Ordering::Relaxed) || self.abandoned.load(Ordering::Relaxed) {
            return None;
        }
        self.abandoned.store(true, Ordering::Relaxed);
        c.abandoned += 1;
        c.abandoned_total += 1;
        Some(c.abandoned)
    }
}

/// Whether `abandoned` threads alive at once is past the bound `max` (pure decision).
pub fn too_many_abandoned(abandoned: usize, max: usize) -> bool {
    abandoned > max
}

/// The proxy on the caller's runtime.
struct ThreadProxy;

struct ProxyState {
    name: String,
    inner: ActorRef<KernelMsg>,
    slot: Arc<Slot>,
    done: watch::Receiver<bool>,
    system: Arc<System>,
}

impl Drop for ProxyState {
    /// Runs however the proxy ends (stop, kill, failure). If the thread still runs, it
    /// is told to die and watched; if it has not ended after [`ABANDON_GRACE`], it is
    /// abandoned.
    fn drop(&mut self) {
        if self.slot.done.load(Ordering::Relaxed) {
            return;
        }
        self.inner.kill();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (name, slot, system) = (self.name.clone(), self.slot.clone(), self.system.clone());
        let mut done = self.done.clone();
        rt.spawn(async move {
            let ended = tokio::time::timeout(ABANDON_GRACE, done.wait_for(|d| *d)).await;
            if ended.is_ok() {
                return;
            }
            if let Some(abandoned) = slot.abandon() {
                let max = system.config.kernels.max_abandoned_threads;
                tracing::error!(
                    kernel = %name,
                    abandoned,
                    max,
                    "kernel thread is stuck and cannot be stopped; abandoned"
                );
                if too_many_abandoned(abandoned, max) {
                    system.request_restart("abandoned kernel threads");
                }
            }
        });
    }
}

impl Actor for ThreadProxy {
    type Msg = KernelMsg;
    type State = ProxyState;
    type Arguments = KernelArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<KernelMsg>,
        args: KernelArgs,
    ) -> Result<ProxyState, ActorProcessingErr> {
        let name = args.spec.name.clone();
        let system = args.system.clone();
        let (slot, done, started) = start_thread(args, myself.get_cell())?;
        match started.await {
            Ok(Ok(inner)) => Ok(ProxyState {
                name,
                inner,
                slot,
                done,
                system,
            }),
            Ok(Err(e)) => Err(Box::new(e)),
            Err(_) => Err(format!("kernel thread of {name} ended before it started").into()),
        }
    }

    async fn handle(
        &self,
        _myself: ActorRef<KernelMsg>,
        msg: KernelMsg,
        state: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        // A send fails only when the inner actor has ended; its exit event follows.
        let _ = state.inner.send_message(msg);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<KernelMsg>,
        evt: SupervisionEvent,
        state: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        let inner = state.inner.get_id();
        match evt {
            SupervisionEvent::ActorFailed(who, err) if who.get_id() == inner => {
                Err(err.to_string().into())
            }
            SupervisionEvent::ActorTerminated(who, _, reason) if who.get_id() == inner => {
                myself.stop(reason);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<KernelMsg>,
        state: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        // A graceful stop: the kernel's own `stop` runs on its thread. If it never ends,
        // the supervisor's shutdown timeout kills this proxy, and `Drop` takes over.
        state.inner.stop(None);
        let _ = state.done.wait_for(|d| *d).await;
        Ok(())
    }
}

type Started = oneshot::Receiver<Result<ActorRef<KernelMsg>, KernelError>>;

/// Starts the OS thread that runs the kernel's actor linked to `parent`.
fn start_thread(
    args: KernelArgs,
    parent: ActorCell,
) -> Result<(Arc<Slot>, watch::Receiver<bool>, Started), ActorProcessingErr> {
    let (tx, rx) = oneshot::channel();
    let (done_tx, done_rx) = watch::channel(false);
    let name = args.spec.name.clone();
    let slot = Slot::started();
    let thread_slot = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("kernel-{name}"))
        .spawn(move || {
            run_thread(args, parent, tx);
            thread_slot.finished();
            done_tx.send_replace(true);
        });
    if let Err(e) = spawned {
        slot.finished();
        return Err(format!("cannot start a thread for kernel {name}: {e}").into());
    }
    Ok((slot, done_rx, rx))
}

/// The body of a kernel thread: a current-thread runtime that lives as long as the actor.
/// Dropping the runtime at the end cancels whatever tasks the kernel spawned.
fn run_thread(
    args: KernelArgs,
    parent: ActorCell,
    started: oneshot::Sender<Result<ActorRef<KernelMsg>, KernelError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(KernelError::failed(format!(
                "cannot build the kernel thread's runtime: {e}"
            ))));
            return;
        }
    };
    let name = args.spec.name.clone();
    rt.block_on(async move {
        match Actor::spawn_linked(None, KernelActor, args, parent).await {
            Ok((actor, join)) => {
                if started.send(Ok(actor.clone())).is_err() {
                    // Nobody waits for this start any more (its timeout passed).
                    actor.stop(Some("start abandoned".to_owned()));
                }
                let _ = join.await;
            }
            Err(e) => {
                let _ = started.send(Err(start_error(&name, e)));
            }
        }
    });
}

/// Starts a thread-isolated kernel: the proxy linked to `supervisor`, the kernel's actor
/// on its own thread linked to the proxy. Returns the proxy once the kernel started.
pub(crate) async fn spawn_on_thread(
    args: KernelArgs,
    supervisor: ActorCell,
) -> Result<ActorRef<KernelMsg>, KernelError> {
    let name = args.spec.name.clone();
    let (proxy, _join) = Actor::spawn_linked(None, ThreadProxy, args, supervisor)
        .await
        .map_err(|e| start_error(&name, e))?;
    Ok(proxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_exceeded_only_past_max() {
        assert!(!too_many_abandoned(8, 8));
        assert!(too_many_abandoned(9, 8));
        assert!(too_many_abandoned(1, 0));
    }

    #[test]
    fn a_slot_is_abandoned_once_and_released_when_its_thread_ends() {
        let before = kernel_threads();
        let slot = Slot::started();
        assert!(slot.abandon().is_some());
        assert!(slot.abandon().is_none(), "abandoned only once");
        slot.finished();
        assert!(
            slot.abandon().is_none(),
            "an ended thread is never abandoned"
        );
        let after = kernel_threads();
        assert_eq!(after.abandoned_total, before.abandoned_total + 1);
    }
}
