//! Actions on kernels through the registry and their supervisors: restart, stop,
//! verify health, count the running ones.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{skipped, Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::kernel::{Control, Health, KernelState, KernelStatus};
use crate::tree::TreeError;

pub(super) fn register(r: &mut ActionRegistry) {
    r.register("restart_kernel", RestartKernel)
        .register("stop_kernel", StopKernel)
        .register("verify_health", VerifyHealth)
        .register("check_kernels", CheckKernels);
}

/// The kernel a step acts on: its `kernel` argument, else the incident's component.
pub(super) fn target(ctx: &ActionContext, args: &Args) -> Result<String, ActionError> {
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

/// Whether a kernel up for `uptime_s` (counted in whole milliseconds) started after
/// an incident detected `since_s` ago. When the two are within the clock's resolution
/// the answer is no: a needless restart is cheaper than a missed one.
pub(crate) fn started_after(uptime_s: f64, since_s: f64) -> bool {
    uptime_s + 0.001 < since_s
}

/// Whether the incident names `kernel`: as its component, or in a list of its details
/// ([`crate::playbook::steady::listed`]).
fn named(ctx: &ActionContext, kernel: &str) -> bool {
    ctx.incident.component == kernel
        || crate::playbook::steady::listed(&ctx.incident).any(|n| n == kernel)
}

/// What the incident says of the kernel when it was detected: its restart count, and
/// whether its supervisor had already taken it down and brought it back (as
/// `critical_heartbeat` reports a kernel in `down`, with `down_ms_ago`).
fn at_detection(ctx: &ActionContext, kernel: &str) -> (Option<u64>, bool) {
    let d = &ctx.incident.details;
    if let Some(e) = d
        .get("down")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|e| e["kernel"] == kernel))
    {
        return (e["restarts"].as_u64(), e["down_ms_ago"].is_u64());
    }
    if ctx.incident.component != kernel {
        return (None, false);
    }
    let restarts = d["restarts"]
        .as_u64()
        .or_else(|| d["event"]["restarts"].as_u64());
    (restarts, d["down_ms_ago"].is_u64())
}

/// The kernel names a step acts on: one, or (for `*`, or the component `system`,
/// which is the whole tree and never a kernel's name) every kernel not stopped on
/// purpose.
fn targets(ctx: &ActionContext, args: &Args) -> Result<(bool, Vec<String>), ActionError> {
    let name = target(ctx, args)?;
    if name != "*" && (name != "system" || ctx.system.registry.get("system").is_some()) {
        return Ok((false, vec![name]));
    }
    let all = ctx
        .system
        .registry
        .statuses()
        .into_iter()
        .filter(|s| s.state() != KernelState::Stopped)
        .map(|s| s.name.clone())
        .collect();
    Ok((true, all))
}

/// Runs `one` on each name at once; one result for one name, else an object of
/// `done` and `skipped` names that fails if any failed.
async fn over<F, Fut>(names: Vec<String>, all: bool, one: F) -> Result<Value, ActionError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ActionError>>,
{
    if !all {
        let name = names.into_iter().next().unwrap_or_default();
        return one(name).await;
    }
    let results = futures::future::join_all(names.iter().cloned().map(&one)).await;
    let (mut done, mut skip, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (n, r) in names.into_iter().zip(results) {
        match r {
            Ok(v) if super::is_skipped(&v) => skip.push(n),
            Ok(_) => done.push(n),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(ActionError::failed(errors.join("; ")));
    }
    if done.is_empty() {
        return Ok(
            json!({ "skipped": true, "reason": "nothing to do on any kernel", "kernels": skip }),
        );
    }
    Ok(json!({ "done": done, "skipped_kernels": skip }))
}

/// `restart_kernel`: restarts a kernel through its supervisor and waits until it runs.
/// Skips when the kernel was already restarted since the incident was detected and is
/// up with a fresh heartbeat (the heartbeat monitor restarts hung kernels itself).
/// `when` narrows it further: `always` (default); `unhealthy`, only a kernel that is
/// down, hung, or reports unhealthy; `down_or_named`, only a kernel that is down or
/// hung, or named in the incident. `kernel: "*"` (or the component `system`) acts on
/// every kernel not stopped on purpose, with `when` other than `always`.
struct RestartKernel;

const WHEN: [&str; 3] = ["always", "unhealthy", "down_or_named"];

/// Waits (up to `bound`) for a restart its supervisor has in progress; true when the
/// kernel came back up with a fresh heartbeat.
async fn await_supervisor_restart(s: &KernelStatus, bound: std::time::Duration) -> bool {
    let until = tokio::time::Instant::now() + bound;
    while s.state() == KernelState::Restarting && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    fresh(s)
}

async fn restart_one(ctx: &ActionContext, name: String, when: &str) -> Result<Value, ActionError> {
    let s = status(ctx, &name)?;
    if s.state() == KernelState::Restarting && await_supervisor_restart(&s, ctx.timeout / 2).await {
        return Ok(json!({
            "skipped": true, "kernel": name,
            "reason": "its supervisor was already restarting it; up with a fresh heartbeat",
        }));
    }
    let snap = s.snapshot();
    if fresh(&s) {
        let (restarts_then, recovered) = at_detection(ctx, &name);
        if restarts_then.is_some_and(|n| snap.restarts > n)
            || since_detected(ctx).is_some_and(|since| started_after(snap.uptime_s, since))
        {
            return Ok(json!({
                "skipped": true, "kernel": name, "uptime_s": snap.uptime_s,
                "reason": "already restarted since the incident was detected, up with a fresh heartbeat",
            }));
        }
        if recovered && restarts_then == Some(snap.restarts) {
            return Ok(skipped(format!(
                "kernel {name} was restarted by its supervisor before the incident was \
                 detected and is up with a fresh heartbeat"
            )));
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
    Ok(json!({ "kernel": name, "restarted": true, "restarts": s.restarts(), "state": s.state() }))
}

#[async_trait]
impl Action for RestartKernel {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let when = args.str("when")?.unwrap_or("always");
        if !WHEN.contains(&when) {
            return Err(args.bad("when", "always, unhealthy or down_or_named"));
        }
        let (all, names) = targets(ctx, args)?;
        if all && when == "always" {
            return Err(args.bad(
                "when",
                "unhealthy or down_or_named when acting on every kernel (never restart them all)",
            ));
        }
        over(names, all, |n| restart_one(ctx, n, when)).await
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel", "when"])?;
        let when = args.str("when").map_err(|e| e.to_string())?;
        match when {
            Some(w) if !WHEN.contains(&w) => {
                Err(format!("when: {w:?} must be one of {}", WHEN.join(", ")))
            }
            None | Some("always") if matches!(args.str("kernel"), Ok(Some("*"))) => {
                Err("kernel \"*\" needs `when: unhealthy` or `when: down_or_named`".to_owned())
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
/// `kernel: "*"` (or the component `system`) checks every kernel not stopped on purpose.
struct VerifyHealth;

async fn verify_one(ctx: &ActionContext, name: String) -> Result<Value, ActionError> {
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
    let health: Health = serde_json::from_value(v).unwrap_or(Health::Healthy);
    if let Health::Unhealthy { reason } = &health {
        return Err(ActionError::failed(format!(
            "kernel {name} reports unhealthy: {reason}"
        )));
    }
    Ok(json!({ "kernel": name, "heartbeat_age_ms": age, "health": health }))
}

#[async_trait]
impl Action for VerifyHealth {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let (all, names) = targets(ctx, args)?;
        over(names, all, |n| verify_one(ctx, n)).await
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

#[cfg(test)]
mod tests {
    use super::{needed, started_after};

    #[test]
    fn a_start_within_the_clock_resolution_of_detection_is_not_after_it() {
        assert!(started_after(0.5, 2.0));
        assert!(!started_after(0.0, 0.0004), "same millisecond");
        assert!(!started_after(3.0, 2.0));
    }

    #[test]
    fn needed_uses_min_fraction_or_three_quarters() {
        assert_eq!(needed(8, None, None), 6);
        assert_eq!(needed(8, Some(3), None), 3);
        assert_eq!(needed(8, None, Some(0.5)), 4);
        assert_eq!(needed(8, Some(5), Some(0.5)), 5);
        assert_eq!(needed(0, None, None), 0);
    }
}
