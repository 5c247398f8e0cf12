//! The kernel actor: runs one [`Kernel`] value on ractor, marks it busy while a handler
//! runs (for the heartbeat monitor), stamps its heartbeat, times its messages, and turns
//! a panic or error into a failure its supervisor sees (or, when allowed, repairs it in
//! place, keeping the same actor and mailbox).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr};
use tracing::Instrument;

use super::api::{Control, Fault, Kernel, KernelContext, KernelError, KernelMsg, RestartNote};
use super::spec::{Isolation, KernelSpec};
use super::status::KernelStatus;
use crate::supervisor::{InPlace, SupervisorMsg};
use crate::time::mono_ms;
use crate::tree::System;

/// The ractor actor behind every kernel (on a task, or on its own thread).
pub(crate) struct KernelActor;

/// What a kernel actor is started with.
pub(crate) struct KernelArgs {
    pub spec: KernelSpec,
    pub status: Arc<KernelStatus>,
    pub system: Arc<System>,
    /// Set when the supervisor lets the kernel repair a panic in place.
    pub in_place: Option<InPlace>,
}

/// The actor's state: the kernel value and what it needs to rebuild it.
pub(crate) struct KernelActorState {
    kernel: Box<dyn Kernel>,
    ctx: KernelContext,
    spec: KernelSpec,
    in_place: Option<InPlace>,
    /// Restarts in place not published yet: (reason, attempt).
    unpublished: Vec<(Arc<str>, u64)>,
    /// `kernel{name}`: entered around every call into the kernel, so its records say
    /// which kernel made them.
    span: tracing::Span,
}

enum Outcome {
    Ok,
    Failed(String),
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_owned()
    }
}

/// A kernel's future, polled so that a panic in it becomes `Err(message)`.
///
/// The catch sits in this small poll function of its own, right above the kernel's
/// frame: a panic then unwinds through the kernel's frames and this one only, and the
/// unwinder, which scans each frame's call-site table, scans a short table instead of
/// the actor loop's.
struct Guarded<F>(F);

impl<F: Future + Unpin> Future for Guarded<F> {
    type Output = Result<F::Output, String>;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(panic_message(p.as_ref()))),
        }
    }
}

/// A call that panicked: the caller is answered with the panic, and the kernel fails.
fn panicked<T>(panic: String) -> (Result<T, String>, Outcome) {
    (Err(panic.clone()), Outcome::Failed(panic))
}

/// The outcome of a kernel call that answers a control or request: its error is the
/// caller's answer; only a panic fails the kernel.
fn answered<T>(r: Result<Result<T, KernelError>, String>) -> (Result<T, String>, Outcome) {
    match r {
        Ok(r) => (r.map_err(|e| e.to_string()), Outcome::Ok),
        Err(panic) => panicked(panic),
    }
}

async fn dispatch(state: &mut KernelActorState, msg: KernelMsg) -> Outcome {
    let KernelActorState { kernel, ctx, .. } = state;
    match msg {
        KernelMsg::Request(req, reply) => {
            let (answer, outcome) = match Guarded(kernel.handle(req, ctx)).await {
                Ok(Ok(v)) => (Ok(v), Outcome::Ok),
                // A bad request is the caller's fault, not the kernel's: answer, stay up.
                Ok(Err(KernelError::BadRequest { kernel: k, reason })) => (
                    Err(format!("bad request to kernel {k}: {reason}")),
                    Outcome::Ok,
                ),
                Ok(Err(e)) => {
                    let reason = e.to_string();
                    (Err(reason.clone()), Outcome::Failed(reason))
                }
                Err(panic) => panicked(panic),
            };
            if let Some(port) = reply {
                let _ = port.send(answer);
            }
            outcome
        }
        KernelMsg::Tick => {
            ctx.status.clear_tick_pending();
            match Guarded(kernel.tick(ctx)).await {
                Ok(Ok(())) => {
                    // The beat itself is stamped once the message is counted as handled.
                    ctx.status.set_unresponsive(false);
                    Outcome::Ok
                }
                Ok(Err(KernelError::Unresponsive(why))) => {
                    // No beat: neither this tick nor any other message proves the kernel
                    // alive until a tick succeeds again, so the monitor sees it hang.
                    ctx.status.set_unresponsive(true);
                    tracing::debug!(kernel = %ctx.name, reason = %why, "tick: unresponsive");
                    Outcome::Ok
                }
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
                Err(panic) => Outcome::Failed(panic),
            }
        }
        KernelMsg::Control(c, port) => {
            let (answer, outcome) = match c {
                Control::Health => match Guarded(kernel.health(ctx)).await {
                    Ok(h) => (
                        serde_json::to_value(h).map_err(|e| e.to_string()),
                        Outcome::Ok,
                    ),
                    Err(panic) => panicked(panic),
                },
                Control::ClearCaches => answered(Guarded(kernel.clear_caches(ctx)).await),
                Control::ShedLoad(on) => answered(Guarded(kernel.shed_load(on, ctx)).await),
                Control::Scale(n) => answered(Guarded(kernel.scale(n, ctx)).await),
                Control::Stats => {
                    match std::panic::catch_unwind(AssertUnwindSafe(|| kernel.stats())) {
                        Ok(v) => (Ok(v), Outcome::Ok),
                        Err(p) => panicked(panic_message(p.as_ref())),
                    }
                }
            };
            let _ = port.send(answer);
            outcome
        }
        // The actor publishes its restarts before dispatch; nothing for the kernel.
        KernelMsg::Restarted(_) => Outcome::Ok,
        KernelMsg::Fault(f) => match f {
            Fault::Panic => {
                let name = &ctx.name;
                let p = std::panic::catch_unwind(|| panic!("injected panic in kernel {name}"));
                Outcome::Failed(p.map_or_else(|p| panic_message(p.as_ref()), |()| String::new()))
            }
            Fault::Error(e) => Outcome::Failed(e),
            Fault::Hang => {
                futures::future::pending::<()>().await;
                Outcome::Ok
            }
            Fault::Spin(d) => {
                let until = Instant::now() + d;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                Outcome::Ok
            }
        },
    }
}

impl KernelActorState {
    /// After a failure: replaces the kernel value with a fresh one and starts it, if the
    /// supervisor's limits admit one more restart (restart in place). Otherwise, and if
    /// the fresh kernel fails to start, the actor fails and the supervisor takes over.
    async fn recover(&mut self, reason: String) -> Result<(), ActorProcessingErr> {
        let admitted = self
            .in_place
            .as_ref()
            .is_some_and(|p| p.admit(tokio::time::Instant::now()));
        if !admitted {
            // A failure ends the actor without `post_stop`: publish what it did first.
            self.publish_restarts();
            self.ctx.status.set_reason(&reason);
            return Err(reason.into());
        }
        self.kernel = (self.spec.factory)();
        if self.ctx.status.set_ticks(self.kernel.ticks()) {
            self.ctx.system.liveness.ticking_changed();
        }
        if let Err(e) = self.kernel.start(&self.ctx).await {
            self.publish_restarts();
            return Err(e.into());
        }
        let reason: Arc<str> = reason.into();
        self.ctx.status.record_restart(&reason);
        self.ctx.status.mark_running();
        // Published once the messages already queued are handled (or at the stop, if
        // that comes first): the repair itself wakes no other task.
        if self.unpublished.is_empty() {
            let _ = self
                .ctx
                .myself
                .send_message(KernelMsg::Restarted(RestartNote));
        }
        self.unpublished.push((reason, self.ctx.status.restarts()));
        Ok(())
    }

    /// Publishes the restarts in place carried out so far (see
    /// [`KernelActorState::recover`]).
    fn publish_restarts(&mut self) {
        let Some(p) = &self.in_place else {
            return;
        };
        for (reason, attempt) in self.unpublished.drain(..) {
            p.publish(&self.ctx.system.bus, &self.ctx.name, &reason, attempt);
        }
    }
}

/// Handles one message (not [`KernelMsg::Restarted`]) while the kernel is marked busy.
async fn handle_busy(
    state: &mut KernelActorState,
    msg: KernelMsg,
) -> Result<(), ActorProcessingErr> {
    // Ticks are not timed: the latency histogram is of work.
    let t0 = (!matches!(msg, KernelMsg::Tick)).then(Instant::now);
    let span = state.span.clone();
    let reason = match dispatch(state, msg).instrument(span.clone()).await {
        Outcome::Ok => {
            let ns = t0.map(|t| u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
            state.ctx.status.note_handled(ns);
            return Ok(());
        }
        Outcome::Failed(r) => r,
    };
    state.recover(reason).instrument(span).await
}

impl Actor for KernelActor {
    type Msg = KernelMsg;
    type State = KernelActorState;
    type Arguments = KernelArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<KernelMsg>,
        args: KernelArgs,
    ) -> Result<KernelActorState, ActorProcessingErr> {
        let ctx = KernelContext {
            name: Arc::from(args.spec.name.as_str()),
            status: args.status,
            system: args.system,
            myself,
        };
        let span = tracing::info_span!("kernel", name = %args.spec.name);
        let mut kernel = (args.spec.factory)();
        if ctx.status.set_ticks(kernel.ticks()) {
            ctx.system.liveness.ticking_changed();
        }
        kernel.start(&ctx).instrument(span.clone()).await?;
        ctx.status.mark_started();
        Ok(KernelActorState {
            kernel,
            ctx,
            spec: args.spec,
            in_place: args.in_place,
            unpublished: Vec::new(),
            span,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<KernelMsg>,
        msg: KernelMsg,
        state: &mut KernelActorState,
    ) -> Result<(), ActorProcessingErr> {
        if let KernelMsg::Restarted(_) = msg {
            state.publish_restarts();
            return Ok(());
        }
        // Busy until the handler (and a repair in place after it) returns: the monitor
        // learns of it only if it was not watching this kernel already.
        let started = mono_ms();
        if state.ctx.status.begin_handling(started) {
            state.ctx.system.liveness.push_busy(&state.ctx.status);
        }
        let result = handle_busy(state, msg).await;
        state.ctx.status.end_handling(started);
        result
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<KernelMsg>,
        state: &mut KernelActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.publish_restarts();
        let span = state.span.clone();
        state.kernel.stop(&state.ctx).instrument(span).await;
        Ok(())
    }
}

/// Starts a kernel's actor linked to `supervisor`, on the isolation its spec asks for.
/// Returns once [`Kernel::start`] succeeded; its exit reaches the supervisor as a ractor
/// supervision event (failure: panic or error; termination: a stop).
///
/// `task` and `process` kernels run as a task on the caller's runtime (a `process`
/// kernel's work is its child process). A `thread` kernel runs on its own OS thread; the
/// reference returned is then a proxy on the caller's runtime that forwards messages, so
/// that a stop or kill of it always ends promptly even when the thread is stuck (see
/// [`super::thread`]).
///
/// The status stays `Starting` (with a fresh heartbeat): the caller sets it `Running`
/// once callers can reach the returned reference (a supervisor registers it first), so
/// that a kernel seen up is never one whose name does not resolve yet.
///
/// A kernel started this way fails on a panic or error, whatever its spec says about
/// restarting in place: only a Grace supervisor gives it the limits that needs.
pub async fn spawn_kernel(
    spec: &KernelSpec,
    status: Arc<KernelStatus>,
    system: Arc<System>,
    supervisor: ActorRef<SupervisorMsg>,
) -> Result<ActorRef<KernelMsg>, KernelError> {
    spawn(spec, status, system, supervisor, None).await
}

/// [`spawn_kernel`], with what a restart in place needs when the supervisor allows one.
pub(crate) async fn spawn(
    spec: &KernelSpec,
    status: Arc<KernelStatus>,
    system: Arc<System>,
    supervisor: ActorRef<SupervisorMsg>,
    in_place: Option<InPlace>,
) -> Result<ActorRef<KernelMsg>, KernelError> {
    let args = KernelArgs {
        spec: spec.clone(),
        status,
        system,
        in_place,
    };
    if spec.isolation == Isolation::Thread {
        return super::thread::spawn_on_thread(args, supervisor.get_cell()).await;
    }
    let (actor, _join) = Actor::spawn_linked(None, KernelActor, args, supervisor.get_cell())
        .await
        .map_err(|e| start_error(&spec.name, e))?;
    Ok(actor)
}

/// A kernel actor's failed spawn as the kernel's error: its own
/// [`KernelError::Ignore`] passes through, anything else is a failure with the reason.
pub(crate) fn start_error(name: &str, e: SpawnErr) -> KernelError {
    if let SpawnErr::StartupFailed(inner) = &e {
        if let Some(KernelError::Ignore) = inner.downcast_ref::<KernelError>() {
            return KernelError::Ignore;
        }
    }
    KernelError::failed(format!("kernel {name} failed to start: {e}"))
}
