//! The steady-state probes of an incident: what verification samples after the
//! playbook, against the running system.
//!
//! Each trigger's default check is the same two questions: does the trigger's own
//! condition still hold (its kernel is asked to check again now, so the answer is
//! fresh, not the last periodic look), and is the component healthy (a kernel that is
//! running, answers a health request and does not report itself unhealthy; an exec
//! kernel's health is its probe). Kernels named in the incident (`kernels`, `down`) are
//! checked too. A playbook's `verify:` steps add their own probes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::verify::{ComponentExpectation, Probe, Sample};
use crate::incident::Incident;
use crate::kernel::{Control, Health, Request};
use crate::tree::System;

/// Bound on each probe's call into a kernel.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The names an incident lists in its details' `kernels`, `down` or `components`
/// (names, or objects with a `kernel` or `name`), as triggers report several kernels.
pub fn listed(inc: &Incident) -> impl Iterator<Item = &str> {
    ["kernels", "down", "components"]
        .into_iter()
        .filter_map(|k| inc.details.get(k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| {
            v.as_str()
                .or_else(|| v.get("kernel").and_then(Value::as_str))
                .or_else(|| v.get("name").and_then(Value::as_str))
        })
}

/// The kernels an incident is about: its component when that is a kernel, and the
/// kernels it [`listed`].
pub fn kernels_of(system: &System, inc: &Incident) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in std::iter::once(inc.component.as_str()).chain(listed(inc)) {
        if system.registry.get(n).is_some() && !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// Whether the incident's trigger still finds its condition: the trigger's kernel is
/// asked for a check now, then the shared conditions are read.
pub async fn condition(system: &Arc<System>, inc: &Incident) -> Option<Probe> {
    let kernel = format!("{}{}", crate::trigger::KERNEL_PREFIX, inc.trigger);
    system.registry.get(&kernel)?;
    let checked = system
        .registry
        .call(&kernel, Request::new("check", Value::Null), PROBE_TIMEOUT)
        .await;
    Some(match checked {
        Err(e) => Probe::Unknown(format!("trigger {} could not check: {e}", inc.trigger)),
        Ok(_)
            if system
                .conditions
                .holds(&inc.trigger, &inc.component, &inc.failure_mode) =>
        {
            Probe::Bad(format!(
                "{} still holds on {}",
                inc.failure_mode, inc.component
            ))
        }
        Ok(_) => Probe::Good("clear".to_owned()),
    })
}

/// Whether a kernel is up, answers a health request, and does not say it is unhealthy.
pub async fn kernel(system: &System, name: &str) -> Probe {
    let Some(entry) = system.registry.get(name) else {
        return Probe::Bad("no longer in the tree".to_owned());
    };
    let state = entry.status.state();
    if !state.is_up() {
        return Probe::Bad(format!("{state:?}, not running").to_lowercase());
    }
    match system
        .registry
        .control(name, Control::Health, PROBE_TIMEOUT)
        .await
    {
        Err(e) => Probe::Bad(format!("does not answer: {e}")),
        Ok(v) => match serde_json::from_value::<Health>(v) {
            Ok(Health::Unhealthy { reason }) => Probe::Bad(format!("unhealthy: {reason}")),
            Ok(Health::Degraded { reason }) => Probe::Good(format!("answers (degraded: {reason})")),
            _ => Probe::Good("answers".to_owned()),
        },
    }
}

/// Whether a kernel is available right now, for the before/after record of an action:
/// None when the component is not a kernel.
pub fn available(system: &System, component: &str) -> Option<bool> {
    system
        .registry
        .get(component)
        .map(|e| e.status.state().is_up())
}

/// Whether a kernel taken out of service is down and stays down.
pub fn contained(system: &System, name: &str) -> Probe {
    match system.registry.get(name).map(|e| e.status.state()) {
        None => Probe::Good("removed from the tree".to_owned()),
        Some(s) if s.is_up() => {
            Probe::Bad(format!("{s:?} though it should be out of service").to_lowercase())
        }
        Some(s) => Probe::Good(format!("{s:?}, out of service").to_lowercase()),
    }
}

/// One sample of the incident's default checks: its trigger's condition, and its
/// kernels as `expect` says.
pub async fn sample(system: &Arc<System>, inc: &Incident, expect: ComponentExpectation) -> Sample {
    let mut s = Sample::default();
    if let Some(p) = condition(system, inc).await {
        s.add(format!("trigger {}", inc.trigger), p);
    }
    for k in kernels_of(system, inc) {
        let p = match expect {
            ComponentExpectation::Running => kernel(system, &k).await,
            ComponentExpectation::Stopped if k == inc.component => contained(system, &k),
            ComponentExpectation::Stopped => kernel(system, &k).await,
            ComponentExpectation::Any => continue,
        };
        s.add(format!("kernel {k}"), p);
    }
    s
}
