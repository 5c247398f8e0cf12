//! Control-hook actions: scale a worker pool, shed or restore load, clear caches.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::kernels::target;
use super::{Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::kernel::Control;
use crate::tree::TreeError;

pub(super) fn register(r: &mut ActionRegistry) {
    r.register("scale_workers", ScaleWorkers)
        .register("shed_load", ShedLoad(true))
        .register("restore_load", ShedLoad(false))
        .register("clear_caches", ClearCaches);
}

/// Whether a kernel's error says it lacks the hook.
fn unsupported(e: &TreeError) -> bool {
    matches!(e, TreeError::Kernel { reason, .. } if reason.contains("does not support"))
}

/// `scale_workers`: `Control::Scale` to `size`, or to the current size (`workers` in
/// the kernel's stats) plus `add` (default 2), at most `max` (default 64) and at most
/// the `max_workers` the kernel's stats report.
struct ScaleWorkers;

#[async_trait]
impl Action for ScaleWorkers {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = target(ctx, args)?;
        let max = args.u64("max")?.unwrap_or(64) as usize;
        let reg = &ctx.system.registry;
        let (from, to) = match args.u64("size")? {
            Some(size) => (None, size as usize),
            None => {
                let stats = reg.control(&name, Control::Stats, ctx.timeout).await?;
                let cur = ["workers", "size"]
                    .iter()
                    .find_map(|k| stats.get(k).and_then(Value::as_u64))
                    .ok_or_else(|| {
                        ActionError::failed(format!(
                            "kernel {name} reports no \"workers\" in its stats; give the step a `size`"
                        ))
                    })? as usize;
                let add = args.u64("add")?.unwrap_or(2) as usize;
                // A kernel that reports its own bound caps the step's.
                let own = stats.get("max_workers").and_then(Value::as_u64);
                let max = own.map_or(max, |m| max.min(m as usize));
                (Some(cur), (cur + add).min(max))
            }
        };
        if from == Some(to) {
            return Err(ActionError::failed(format!(
                "kernel {name} already has {to} workers, the maximum this step or the kernel allows"
            )));
        }
        let out = reg.control(&name, Control::Scale(to), ctx.timeout).await?;
        Ok(json!({ "kernel": name, "from": from, "to": to, "result": out }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel", "size", "add", "max"])?;
        for k in ["size", "add", "max"] {
            args.typed(k, Args::u64)?;
        }
        Ok(())
    }
}

/// `shed_load` (true) and `restore_load` (false): `Control::ShedLoad` on the named
/// `kernel`, or on every running non-critical kernel that supports it.
struct ShedLoad(bool);

#[async_trait]
impl Action for ShedLoad {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let reg = &ctx.system.registry;
        if let Some(name) = args.str("kernel")?.filter(|s| !s.is_empty()) {
            let out = reg
                .control(name, Control::ShedLoad(self.0), ctx.timeout)
                .await?;
            return Ok(json!({ "kernels": { name: out } }));
        }
        let names = reg
            .statuses()
            .into_iter()
            .filter(|s| !s.critical && s.state().is_up())
            .map(|s| s.name.clone());
        each(
            ctx,
            names,
            Control::ShedLoad(self.0),
            if self.0 { "shed_load" } else { "restore_load" },
        )
        .await
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// `clear_caches`: `Control::ClearCaches` on every running kernel that supports it.
struct ClearCaches;

#[async_trait]
impl Action for ClearCaches {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let names: Vec<String> = match args.str("kernel")?.filter(|s| !s.is_empty()) {
            Some(n) => vec![n.to_owned()],
            None => ctx
                .system
                .registry
                .statuses()
                .into_iter()
                .filter(|s| s.state().is_up())
                .map(|s| s.name.clone())
                .collect(),
        };
        each(ctx, names.into_iter(), Control::ClearCaches, "clear_caches").await
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// Runs a control hook on each kernel at once; kernels without the hook are left out.
/// Fails when no kernel supports it, or when one that does fails.
async fn each(
    ctx: &ActionContext,
    names: impl Iterator<Item = String>,
    c: Control,
    what: &str,
) -> Result<Value, ActionError> {
    let reg = &ctx.system.registry;
    let calls = names.map(|n| {
        let c = c.clone();
        async move {
            let r = reg.control(&n, c, ctx.timeout).await;
            (n, r)
        }
    });
    let mut done = serde_json::Map::new();
    let mut errors = Vec::new();
    for (n, r) in futures::future::join_all(calls).await {
        match r {
            Ok(v) => {
                done.insert(n, v);
            }
            Err(e) if unsupported(&e) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(ActionError::failed(format!(
            "{what}: {}",
            errors.join("; ")
        )));
    }
    if done.is_empty() {
        // Nothing to act on is not a failure of the action, and not a success either.
        return Ok(super::skipped(format!(
            "{what}: nothing to act on, no running kernel supports it"
        )));
    }
    Ok(json!({ "kernels": done }))
}
