//! The `exec` kernel: an external command supervised like a supervisord program.
//!
//! The command runs in its own process group (and, where cgroups are in force, its own
//! cgroup: see [`contain`]). A task waits on it from the start, so its exit is seen at
//! once (never by polling) and fails the kernel with the reason `exited with status N`
//! or `killed by signal S` (`exited with status 0` is a normal stop instead, which a
//! `transient` kernel is not restarted after). When the leader exits, every process it
//! started is killed.
//!
//! Liveness is the process plus an optional probe run at every heartbeat tick: a failing
//! probe withholds the heartbeat, so the heartbeat monitor declares the kernel hung after
//! its timeout and it is restarted. A graceful stop sends SIGTERM to every process of
//! the kernel, waits `stop_timeout`, then SIGKILLs them all; if the kernel's actor is
//! killed or panics instead, a drop guard SIGKILLs them. What "every process" can reach
//! depends on the containment mechanism in force and has limits: a cgroup holds all of
//! them; without one, a process that left the kernel's tree, cleared its environment
//! and was never seen at a tick, or that was re-parented to another subreaper than
//! serve, is not found (see [`contain`] and the README).

pub mod cgroup;
mod child;
pub mod contain;
mod options;
mod probe;
pub(crate) mod procfs;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::{Health, Kernel, KernelContext, KernelError, KernelFactory, Request};
use child::Group;
pub(crate) use options::EXEC_FIX;
pub use options::{ExecOptions, Probe};

/// The request the child's waiter sends its kernel; its argument is the generation of
/// the kernel value that started the child, so that a stale one is ignored.
const EXITED: &str = "child_exited";

/// The `exec` kernel.
pub struct ExecKernel {
    opts: Arc<ExecOptions>,
    generation: u64,
    group: Option<Group>,
    started: Option<Instant>,
    probe_failures: u64,
    last_probe_error: Option<String>,
}

impl ExecKernel {
    /// A kernel that will run the command of `opts` when started.
    pub fn new(opts: Arc<ExecOptions>) -> ExecKernel {
        ExecKernel {
            opts,
            generation: 0,
            group: None,
            started: None,
            probe_failures: 0,
            last_probe_error: None,
        }
    }

    /// A factory of such kernels, for a [`super::KernelSpec`].
    pub fn factory(opts: ExecOptions) -> KernelFactory {
        let opts = Arc::new(opts);
        Arc::new(move || Box::new(ExecKernel::new(opts.clone())))
    }

    fn exit_reason(&self) -> Option<String> {
        self.group.as_ref().and_then(Group::exit_reason)
    }

    fn bad(ctx: &KernelContext, reason: String) -> KernelError {
        KernelError::BadRequest {
            kernel: ctx.name.to_string(),
            reason,
        }
    }
}

#[async_trait]
impl Kernel for ExecKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.generation = rand::random();
        let (me, generation) = (ctx.clone(), self.generation);
        let group = Group::spawn(&ctx.name, generation, &self.opts, move || {
            me.send_self(Request::new(EXITED, json!(generation)));
        })?;
        tracing::info!(kernel = %ctx.name, pid = group.pid(), command = %self.opts.command, "exec child started");
        self.group = Some(group);
        self.started = Some(Instant::now());
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            EXITED if req.args.as_u64() == Some(self.generation) => {
                let Some(reason) = self.exit_reason() else {
                    return Ok(Value::Null);
                };
                if reason == "exited with status 0" {
                    ctx.myself.stop(Some(reason));
                    return Ok(Value::Null);
                }
                Err(KernelError::Failed(reason))
            }
            EXITED => Ok(Value::Null),
            "stats" => Ok(self.stats()),
            "signal" => {
                let name = req.args.get("signal").and_then(Value::as_str).unwrap_or("");
                let full = if name.starts_with("SIG") {
                    name.to_owned()
                } else {
                    format!("SIG{name}")
                };
                let sig = Signal::from_str(&full)
                    .map_err(|_| Self::bad(ctx, format!("unknown signal {name:?}")))?;
                let group = self
                    .group
                    .as_ref()
                    .ok_or_else(|| Self::bad(ctx, "no child".into()))?;
                group.signal(sig).map_err(|e| Self::bad(ctx, e))?;
                Ok(json!({ "signalled": full }))
            }
            other => Err(Self::bad(
                ctx,
                format!(
                    "unknown op {other:?}; exec kernels take \"stats\" and \"signal\" \
                     ({{\"signal\": \"HUP\"}})"
                ),
            )),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        if let Some(reason) = self.exit_reason() {
            return Err(KernelError::Failed(reason));
        }
        if let Some(g) = &self.group {
            g.track();
        }
        let Some(p) = &self.opts.probe else {
            return Ok(());
        };
        match probe::run(p, self.opts.probe_timeout).await {
            Ok(()) => {
                self.last_probe_error = None;
                Ok(())
            }
            Err(why) => {
                self.probe_failures += 1;
                self.last_probe_error = Some(why.clone());
                Err(KernelError::Unresponsive(format!("probe failed: {why}")))
            }
        }
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        if let Some(reason) = self.exit_reason() {
            return Health::Unhealthy { reason };
        }
        match &self.last_probe_error {
            Some(e) => Health::Unhealthy {
                reason: format!("probe failed: {e}"),
            },
            None => Health::Healthy,
        }
    }

    fn stats(&self) -> Value {
        json!({
            "pid": self.group.as_ref().map(Group::pid),
            "cgroup": self.group.as_ref().and_then(Group::cgroup),
            "command": self.opts.command,
            "probe": self.opts.probe.as_ref().map(|p| format!("{p:?}")),
            "probe_failures": self.probe_failures,
            "last_probe_error": self.last_probe_error,
            "exit": self.exit_reason(),
            "uptime_s": self.started.map(|t| t.elapsed().as_secs_f64()),
        })
    }

    async fn stop(&mut self, _ctx: &KernelContext) {
        if let Some(g) = &self.group {
            g.terminate(self.opts.stop_timeout).await;
        }
    }
}
