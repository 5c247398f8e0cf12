//! The `triggers` supervisor: one kernel per enabled trigger, and the way to add one.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::actor::{GateBook, TriggerKernel};
use super::api::Trigger;
use super::builtin::{
    ApiTimeout, ConfigDrift, CriticalHeartbeat, EventAnomaly, ExecTrigger, HeartbeatFailure,
    KpiThreshold, LatencyQueue, ModelIntegrity, RepeatedError, ResourceSpike, SandboxFailure,
    Scheduled, TrustScore,
};
use super::config::TriggersConfig;
use super::rule::Rule;
use crate::kernel::{KernelFactory, KernelSpec};
use crate::supervisor::{AttemptLimit, ChildSpec, Strategy, SupervisorSpec};
use crate::tree::System;

/// Every trigger kernel's name starts with this (`trigger.heartbeat_failure`).
pub const KERNEL_PREFIX: &str = "trigger.";
/// The name of the supervisor of the triggers.
pub const SUPERVISOR_NAME: &str = "triggers";

/// The heartbeat timeout of a trigger checking every `interval`: three missed checks,
/// and never under a minute.
pub fn heartbeat_timeout(interval: Duration) -> Duration {
    (interval * 3).max(Duration::from_secs(60))
}

/// A kernel running the trigger `make()` under `rule`, named `trigger.<name>`, with
/// `rule.interval` as its heartbeat (check) interval.
///
/// The trigger's conditions (`for` timers, deduplication, flap history) are kept by
/// this spec, not by the kernel, so they survive restarts of the kernel.
pub fn trigger_spec<T, F>(name: &str, rule: Rule, make: F) -> KernelSpec
where
    T: Trigger,
    F: Fn() -> T + Send + Sync + 'static,
{
    let book = Arc::new(Mutex::new(GateBook::default()));
    let factory: KernelFactory =
        Arc::new(move || Box::new(TriggerKernel::new(rule, book.clone(), make())));
    let interval = rule.interval.max(Duration::from_millis(1));
    KernelSpec::new(format!("{KERNEL_PREFIX}{name}"), factory)
        .heartbeat(interval, heartbeat_timeout(interval))
}

/// A trigger kernel as a child of the `triggers` supervisor: permanent, and left down
/// after 3 failed restarts within 30 s, so a broken trigger cannot take the system
/// supervisor down with it.
pub fn trigger_child(spec: KernelSpec) -> ChildSpec {
    ChildSpec::kernel(spec).attempts(AttemptLimit::default())
}

/// The kernels of the enabled built-in triggers.
pub fn builtin_specs(system: &Arc<System>, cfg: &TriggersConfig) -> Vec<KernelSpec> {
    let mut v = Vec::new();
    if !cfg.enabled {
        return v;
    }
    macro_rules! add {
        ($name:literal, $section:expr, $make:expr) => {
            if $section.enabled {
                let section = $section.clone();
                let rule = cfg.rule($section.common());
                #[allow(clippy::redundant_closure_call)]
                v.push(trigger_spec($name, rule, move || ($make)(section.clone())));
            }
        };
    }
    add!(
        "heartbeat_failure",
        cfg.heartbeat_failure,
        HeartbeatFailure::new
    );
    add!(
        "critical_heartbeat",
        cfg.critical_heartbeat,
        CriticalHeartbeat::new
    );
    add!("api_timeout", cfg.api_timeout, ApiTimeout::new);
    add!("kpi_threshold", cfg.kpi_threshold, KpiThreshold::new);
    add!("latency_queue", cfg.latency_queue, LatencyQueue::new);
    let mut resource = cfg.resource_spike.clone();
    resource
        .disk_path
        .get_or_insert_with(|| system.paths.root().to_path_buf());
    add!("resource_spike", resource, ResourceSpike::new);
    add!("trust_score", cfg.trust_score, TrustScore::new);
    add!("sandbox_failure", cfg.sandbox_failure, SandboxFailure::new);
    add!("event_anomaly", cfg.event_anomaly, EventAnomaly::new);
    if cfg.config_drift.enabled {
        // One baseline per serve, shared by every incarnation of the trigger.
        let baseline = Arc::new(Mutex::new(None));
        let section = cfg.config_drift.clone();
        let rule = cfg.rule(section.common());
        v.push(trigger_spec("config_drift", rule, move || {
            ConfigDrift::new(section.clone(), baseline.clone())
        }));
    }
    add!("model_integrity", cfg.model_integrity, ModelIntegrity::new);
    add!("repeated_error", cfg.repeated_error, RepeatedError::new);
    add!("scheduled", cfg.scheduled, Scheduled::new);
    for e in cfg.exec.iter().filter(|e| e.enabled) {
        let section = e.clone();
        let mut spec = trigger_spec(
            &format!("exec.{}", e.name),
            cfg.rule(e.common()),
            move || ExecTrigger::new(section.clone()),
        );
        // A check may run for its whole timeout inside one tick.
        spec.heartbeat_timeout += e.timeout;
        v.push(spec);
    }
    v
}

/// The `triggers` supervisor (one_for_one) with one kernel per enabled built-in
/// trigger. The tree puts it under `system`.
pub fn triggers_supervisor(system: &Arc<System>, cfg: &TriggersConfig) -> SupervisorSpec {
    triggers_supervisor_with(system, cfg, Vec::new())
}

/// [`triggers_supervisor`] plus the library user's own triggers (made with
/// [`trigger_spec`]).
pub fn triggers_supervisor_with(
    system: &Arc<System>,
    cfg: &TriggersConfig,
    extra: impl IntoIterator<Item = KernelSpec>,
) -> SupervisorSpec {
    builtin_specs(system, cfg).into_iter().chain(extra).fold(
        SupervisorSpec::new(SUPERVISOR_NAME, Strategy::OneForOne)
            .intensity(10, Duration::from_secs(60)),
        |s, k| s.child(trigger_child(k)),
    )
}
