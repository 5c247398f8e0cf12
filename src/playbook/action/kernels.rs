//! Actions on kernels through the registry: restart, stop, verify health, count the
//! running ones, and the control hooks (scale, shed/restore load, clear caches).

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{skipped, Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::kernel::{Control, Health, KernelStatus};
use crate::tree::TreeError;

pub(super) fn register(r: &mut ActionRegistry) {
    r.register("restart_kernel", RestartKernel)
        .register("stop_kernel", StopKernel)
        .register("verify_health", VerifyHealth)
        .register("check_kernels", CheckKernels)
        .register("scale_workers", ScaleWorkers)
        .register("shed_load", ShedLoad(true))
        .register("restore_load", ShedLoad(false))
        .register("clear_caches", ClearCaches);
}

/// The kernel a step acts on: its `kernel` argument, else the incident's component.
fn target(ctx: &ActionContext, args: &Args) -> Result<String, ActionError> {
    Ok(args
        .str("kernel")?
        .filter(|s| !s.is_empty())
        .unwrap_or(&ctx.incident.component)
        .to_owned())
}

fn status(ctx: &ActionContext, name: &str) -> Result<std::sync::Arc<KernelStatus>, ActionError> {
    ctx.system
        .registry
        .get(name)
        .map(|e| e.status.clone())
        .ok_or_else(|| TreeError::NoSuchKernel(name.to_owned()).into())
}

/// Up, with a heartbeat younger than its timeout.
fn fresh(s: &KernelStatus) -> bool {
    s.state().is_up() && s.heartbeat_age_ms() <= s.heartbeat_timeout_ms()
}

/// Seconds since the incident was detected (None if its timestamp does not parse).
fn since_detected(ctx: &ActionContext) -> Option<f64> {
    let at = chrono::DateTime::parse_from_rfc3339(&ctx.incident.detected_at).ok()?;
    let d = crate::time::now().signed_duration_since(at);
    Some(d.num_microseconds()? as f64 / 1e6)
}

/// Whether the incident names `kernel`: as its component, or in a `kernels`, `down` or
/// `components` list of its details.
fn named(ctx: &ActionContext, kernel: &str) -> bool {
    if ctx.incident.component == kernel {
        return true;
    }
    ["kernels", "down", "components"].iter().any(|k| {
        ctx.incident
            .details
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(kernel)))
    })
}

/// `restart_kernel`: restarts a kernel through its supervisor and waits until it runs.
/// Skips when the kernel was already restarted since the incident was detected and is
/// up with a fresh heartbeat (the heartbeat monitor restarts hung kernels itself).
/// `when` narrows it further: `always` (default); `unhealthy`, only a kernel that is
/// down, hung, or reports unhealthy; `down_or_named`, only a kernel that is down or
/// hung, or named in the incident.
struct RestartKernel;

const WHEN: [&str; 3] = ["always", "unhealthy", "down_or_named"];

#[async_trait]
impl Action for RestartKernel {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = target(ctx, args)?;
        let when = args.str("when")?.unwrap_or("always");
        if !WHEN.contains(&when) {
            return Err(args.bad("when", "always, unhealthy or down_or_named"));
        }
        let s = status(ctx, &name)?;
        let snap = s.snapshot();
        if fresh(&s) {
            if since_detected(ctx).is_some_and(|since| snap.uptime_s < since) {
                return Ok(json!({
                    "skipped": true, "kernel": name, "uptime_s": snap.uptime_s,
                    "reason": "already restarted since the incident was detected, up with a fresh heartbeat",
                }));
            }
            if when == "down_or_named" && !named(ctx, &name) {
                return Ok(skipped(format!(
                    "kernel {name} is up with a fresh heartbeat and not named in the incident"
                )));
            }
            if when == "unhealthy" {
                let probe = ctx
                    .system
                    .registry
                    .control(&name, Control::Health, ctx.timeout / 2)
                    .await;
                let unhealthy = match &probe {
                    Ok(v) => matches!(
                        serde_json::from_value(v.clone()),
                        Ok(Health::Unhealthy { .. })
                    ),
                    Err(_) => true,
                };
                if !unhealthy {
                    return Ok(skipped(format!("kernel {name} is up, fresh and healthy")));
                }
            }
        }
        let reason = format!(
            "playbook {} for incident {}",
            ctx.playbook, ctx.incident.incident_id
        );
        ctx.system
            .registry
            .restart(&name, &reason, ctx.timeout)
            .await?;
        Ok(
            json!({ "kernel": name, "restarted": true, "restarts": s.restarts(), "state": s.state() }),
        )
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel", "when"])?;
        match args.str("when").map_err(|e| e.to_string())? {
            Some(w) if !WHEN.contains(&w) => {
                Err(format!("when: {w:?} must be one of {}", WHEN.join(", ")))
            }
            _ => Ok(()),
        }
    }
}

/// `stop_kernel`: stops a kernel through its supervisor; it stays down.
struct StopKernel;

#[async_trait]
impl Action for StopKernel {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = target(ctx, args)?;
        ctx.system.registry.stop(&name, ctx.timeout).await?;
        Ok(json!({ "kernel": name, "stopped": true }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// `verify_health`: the kernel is up, its heartbeat fresh, and its health hook does
/// not report unhealthy. Give the step `retries` to wait for a kernel coming back.
struct VerifyHealth;

#[async_trait]
impl Action for VerifyHealth {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let name = target(ctx, args)?;
        let s = status(ctx, &name)?;
        if !s.state().is_up() {
            return Err(ActionError::failed(format!(
                "kernel {name} is {:?}, not running",
                s.state()
            )));
        }
        let age = s.heartbeat_age_ms();
        if age > s.heartbeat_timeout_ms() {
            return Err(ActionError::failed(format!(
                "kernel {name}: heartbeat {age} ms old, timeout {} ms",
                s.heartbeat_timeout_ms()
            )));
        }
        let v = ctx
            .system
            .registry
            .control(&name, Control::Health, ctx.timeout)
            .await?;
        let health: Health = serde_json::from_value(v.clone()).unwrap_or(Health::Healthy);
        if let Health::Unhealthy { reason } = &health {
            return Err(ActionError::failed(format!(
                "kernel {name} reports unhealthy: {reason}"
            )));
        }
        Ok(json!({ "kernel": name, "heartbeat_age_ms": age, "health": health }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel"])
    }
}

/// `check_kernels`: at least `min` kernels, or a `fraction` of them (default 0.75),
/// are running (of all kernels, or only the critical ones with `critical: true`).
struct CheckKernels;

#[async_trait]
impl Action for CheckKernels {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let only_critical = args.bool("critical")?.unwrap_or(false);
        let all: Vec<_> = ctx
            .system
            .registry
            .statuses()
            .into_iter()
            .filter(|s| !only_critical || s.critical)
            .collect();
        let total = all.len();
        let running = all.iter().filter(|s| s.state().is_up()).count();
        let down: Vec<&str> = all
            .iter()
            .filter(|s| !s.state().is_up())
            .map(|s| s.name.as_str())
            .collect();
        let min = args.u64("min")?;
        let fraction = args.f64("fraction")?;
        let need = needed(total, min, fraction);
        let out = json!({ "running": running, "total": total, "needed": need, "down": down });
        if running >= need {
            Ok(out)
        } else {
            Err(ActionError::failed(format!(
                "only {running} of {total} kernels running, {need} needed; down: {}",
                down.join(", ")
            )))
        }
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["min", "fraction", "critical"])?;
        args.typed("min", Args::u64)?;
        args.typed("critical", Args::bool)?;
        match args.f64("fraction").map_err(|e| e.to_string())? {
            Some(f) if !(0.0..=1.0).contains(&f) => {
                Err(format!("fraction {f} must be between 0 and 1"))
            }
            _ => Ok(()),
        }
    }
}

/// How many of `total` kernels must run: `min` and `fraction` both apply when given;
/// with neither, three quarters.
pub(crate) fn needed(total: usize, min: Option<u64>, fraction: Option<f64>) -> usize {
    let by_fraction = |f: f64| (f * total as f64).ceil() as usize;
    match (min, fraction) {
        (None, None) => by_fraction(0.75),
        (Some(m), None) => m as usize,
        (None, Some(f)) => by_fraction(f),
        (Some(m), Some(f)) => (m as usize).max(by_fraction(f)),
    }
}

/// Whether a kernel's error says it lacks the hook.
fn unsupported(e: &TreeError) -> bool {
    matches!(e, TreeError::Kernel { reason, .. } if reason.contains("does not support"))
}

/// `scale_workers`: `Control::Scale` to `size`, or to the current size (`workers` in
/// the kernel's stats) plus `add` (default 2), at most `max` (default 64).
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
                (Some(cur), (cur + add).min(max))
            }
        };
        if from == Some(to) {
            return Err(ActionError::failed(format!(
                "kernel {name} already has {to} workers, the maximum ({max})"
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
        return Err(ActionError::failed(format!(
            "{what}: no running kernel supports it"
        )));
    }
    Ok(json!({ "kernels": done }))
}

#[cfg(test)]
mod tests {
    use super::needed;

    #[test]
    fn needed_uses_min_fraction_or_three_quarters() {
        assert_eq!(needed(8, None, None), 6);
        assert_eq!(needed(8, Some(3), None), 3);
        assert_eq!(needed(8, None, Some(0.5)), 4);
        assert_eq!(needed(8, Some(5), Some(0.5)), 5);
        assert_eq!(needed(0, None, None), 0);
    }
}
