//! The `Kernel` trait library users implement, and the messages a kernel actor takes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::KernelStatus;
use crate::tree::System;

/// Why a kernel operation failed. A kernel that returns an error from
/// [`Kernel::handle`] or [`Kernel::tick`] has failed: its supervisor applies its restart
/// strategy, exactly as for a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The kernel does not implement this hook or operation.
    #[error("kernel {kernel} does not support {what}")]
    Unsupported {
        /// The kernel.
        kernel: String,
        /// The hook or operation.
        what: String,
    },
    /// A request was malformed.
    #[error("bad request to kernel {kernel}: {reason}")]
    BadRequest {
        /// The kernel.
        kernel: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel failed; the message is its reason, recorded with the restart.
    #[error("{0}")]
    Failed(String),
    /// From [`Kernel::start`]: the kernel declines to run (OTP's `ignore`). Its
    /// supervisor keeps it down, without counting a failure (see
    /// [`crate::supervisor::Started::Ignored`]).
    #[error("ignored: the kernel declined to start")]
    Ignore,
    /// From [`Kernel::tick`]: the kernel is alive but its work is not (a probe failed).
    /// The heartbeat is not stamped, so the monitor declares it hung after its timeout;
    /// the kernel is not failed at once.
    #[error("unresponsive: {0}")]
    Unresponsive(String),
    /// The kernel's options (its `options` table in the configuration) are invalid.
    #[error("kernel {kernel} (kind {kind}): {reason}; {fix}")]
    BadOptions {
        /// The kernel.
        kernel: String,
        /// Its kind.
        kind: String,
        /// What is wrong, naming the option.
        reason: String,
        /// How to fix it.
        fix: String,
    },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl KernelError {
    /// A failure with a reason.
    pub fn failed(reason: impl Into<String>) -> KernelError {
        KernelError::Failed(reason.into())
    }
}

/// A request to a kernel: an operation name and JSON arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The operation (`"get"`, `"enqueue"`, ...), defined by each kernel.
    pub op: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Value,
}

impl Request {
    /// A request with arguments.
    pub fn new(op: impl Into<String>, args: Value) -> Request {
        Request {
            op: op.into(),
            args,
        }
    }
}

/// What a request or control call answers: JSON, or the error as text.
pub type KernelReply = Result<Value, String>;

/// A kernel's own view of its health, from [`Kernel::health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Health {
    /// Working normally.
    Healthy,
    /// Working, but impaired; the reason is shown on the dashboard.
    Degraded {
        /// Why.
        reason: String,
    },
    /// Not working; counts as a failed health check.
    Unhealthy {
        /// Why.
        reason: String,
    },
}

/// Operator and playbook hooks, delivered to the kernel by its actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Run [`Kernel::health`].
    Health,
    /// Run [`Kernel::clear_caches`].
    ClearCaches,
    /// Run [`Kernel::shed_load`] (true: shed; false: restore).
    ShedLoad(bool),
    /// Run [`Kernel::scale`] with a target size.
    Scale(usize),
    /// Return [`Kernel::stats`].
    Stats,
}

/// Faults the chaos harness injects into a kernel's message loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Panic inside the handler.
    Panic,
    /// Return an error from the handler.
    Error(String),
    /// Await something that never completes (an async hang).
    Hang,
    /// Spin the CPU for this long without awaiting.
    Spin(Duration),
}

/// The mailbox type of every kernel actor.
#[derive(Debug)]
#[non_exhaustive]
pub enum KernelMsg {
    /// A request, with an optional reply port.
    Request(Request, Option<RpcReplyPort<KernelReply>>),
    /// The heartbeat tick (sent to kernels that [tick](Kernel::ticks)): runs
    /// [`Kernel::tick`] and stamps the heartbeat.
    Tick,
    /// An operator/playbook hook.
    Control(Control, RpcReplyPort<KernelReply>),
    /// An injected fault.
    Fault(Fault),
    /// Sent by the kernel's actor to itself after a restart in place, to publish it.
    Restarted(RestartNote),
}

/// The body of [`KernelMsg::Restarted`]; only the kernel's actor makes one.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestartNote;

/// What a kernel sees of the runtime: its name, its status, and the system's shared
/// services (bus, registry, state paths).
#[derive(Clone)]
pub struct KernelContext {
    /// The kernel's name.
    pub name: Arc<str>,
    /// Its shared status (heartbeat, counters).
    pub status: Arc<KernelStatus>,
    /// The system it runs in.
    pub system: Arc<System>,
    /// The kernel's own actor, to send itself messages.
    pub myself: ractor::ActorRef<KernelMsg>,
}

impl KernelContext {
    /// Sends this kernel a request (handled after what is already in its mailbox).
    pub fn send_self(&self, req: Request) {
        self.status.note_enqueued();
        let _ = self.myself.send_message(KernelMsg::Request(req, None));
    }
}

/// A unit of work under supervision.
///
/// Every method runs inside the kernel's actor, one at a time. A kernel that panics or
/// returns an error is restarted by its supervisor from a fresh value made by its
/// [`super::KernelFactory`]; state that must survive a restart belongs outside (a file,
/// a shared map).
#[async_trait]
pub trait Kernel: Send + 'static {
    /// Called once per (re)start, before any message.
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        Ok(())
    }

    /// Handles one request.
    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError>;

    /// Whether the kernel is ticked: [`Kernel::tick`] then runs at every heartbeat
    /// interval, and the kernel counts as hung when its ticks stop succeeding. A kernel
    /// that does not tick (the default) costs nothing while idle and is hung only when a
    /// handler runs past its heartbeat timeout without beating
    /// ([`KernelStatus::beat`]). Override it together with [`Kernel::tick`].
    fn ticks(&self) -> bool {
        false
    }

    /// Called at every heartbeat tick of a kernel that [ticks](Kernel::ticks); periodic
    /// work and liveness probes go here. `Ok` stamps the heartbeat;
    /// [`KernelError::Unresponsive`] skips the stamp; other errors fail the kernel.
    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        Ok(())
    }

    /// The kernel's own health check.
    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        Health::Healthy
    }

    /// Drops caches to relieve memory pressure; returns what was freed.
    async fn clear_caches(&mut self, ctx: &KernelContext) -> Result<Value, KernelError> {
        Err(unsupported(ctx, "clear_caches"))
    }

    /// Starts (true) or stops (false) shedding low-priority load.
    async fn shed_load(&mut self, _on: bool, ctx: &KernelContext) -> Result<Value, KernelError> {
        Err(unsupported(ctx, "shed_load"))
    }

    /// Resizes the kernel's internal capacity (workers, connections).
    async fn scale(&mut self, _size: usize, ctx: &KernelContext) -> Result<Value, KernelError> {
        Err(unsupported(ctx, "scale"))
    }

    /// Figures for the dashboard (backlog, sizes); JSON object.
    fn stats(&self) -> Value {
        Value::Null
    }

    /// Called on a graceful stop (not on kill or after a panic).
    async fn stop(&mut self, _ctx: &KernelContext) {}
}

fn unsupported(ctx: &KernelContext, what: &str) -> KernelError {
    KernelError::Unsupported {
        kernel: ctx.name.to_string(),
        what: what.to_owned(),
    }
}
