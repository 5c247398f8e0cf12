//! First, do no harm: which automated actions may disrupt a component, and how many
//! components automation may hold down at once (DESIGN.md, "Playbooks").
//!
//! A disruptive action (stop a kernel, quarantine it, shed its load, restart serve)
//! leaves the service less available than before, so it runs only when the user marked
//! the component for it (`sandbox = true`), or after repair has failed (the kernel's
//! supervisor left it down, or an earlier step of the run failed), and, for a restart
//! of serve, only on evidence that serve itself is the cause. Even then it needs room
//! in the disruption budget (`[playbooks] disruption_budget`), as a Kubernetes
//! PodDisruptionBudget does. A refused action is recorded as a skipped step with the
//! reason: it did nothing, and verification decides the incident.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::incident::Incident;
use crate::kernel::KernelState;
use crate::tree::System;

/// Actions that make a component less available while they act.
pub const DISRUPTIVE: [&str; 4] = ["stop_kernel", "quarantine", "shed_load", "restart_service"];

/// Whether `action` is disruptive.
pub fn is_disruptive(action: &str) -> bool {
    DISRUPTIVE.contains(&action)
}

/// The facts the decision is made on, gathered from the running system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The component is a kernel the user marked `sandbox = true`.
    pub sandboxed: bool,
    /// Its supervisor left it down (attempt limit, intensity, failed start).
    pub left_down: bool,
    /// An earlier step of this run failed (a repair was tried and did not work).
    pub repair_failed: bool,
    /// The incident attributes the fault to serve itself.
    pub serve_is_cause: bool,
}

impl Facts {
    /// What the system says about the incident's component.
    pub fn of(system: &System, inc: &Incident, repair_failed: bool) -> Facts {
        let entry = system.registry.get(&inc.component);
        // `grace` is serve's own process tree, as `resource_spike` measures it.
        let serve_is_cause = inc.component == "serve"
            || inc.component == "grace"
            || inc.trigger == "api_timeout"
            || inc
                .details
                .get("serve_is_cause")
                .and_then(serde_json::Value::as_bool)
                == Some(true);
        Facts {
            sandboxed: entry.as_ref().is_some_and(|e| e.status.sandbox),
            left_down: entry
                .as_ref()
                .is_some_and(|e| e.status.state() == KernelState::Failed),
            repair_failed,
            serve_is_cause,
        }
    }
}

/// Whether a disruptive `action` may run on these facts; the refusal says why.
pub fn permitted(action: &str, f: &Facts) -> Result<(), String> {
    match action {
        "restart_service" if !f.serve_is_cause => Err(
            "restart of serve refused: nothing shows that serve itself is the cause".to_owned(),
        ),
        "stop_kernel" | "quarantine" if !(f.sandboxed || f.left_down || f.repair_failed) => Err(format!(
            "{action} refused: the component is not marked `sandbox = true` and no repair has failed"
        )),
        _ => Ok(()),
    }
}

/// How many components automation may hold disrupted at once, and which it holds.
#[derive(Debug)]
pub struct DisruptionBudget {
    max: usize,
    held: Mutex<HashSet<String>>,
}

impl DisruptionBudget {
    /// A budget of `max` components (at least one).
    pub fn new(max: usize) -> DisruptionBudget {
        DisruptionBudget {
            max: max.max(1),
            held: Mutex::new(HashSet::new()),
        }
    }

    /// Takes room for disrupting `component`, or says why there is none. A component
    /// already held takes no more room; components that are up again (`is_up`) give
    /// theirs back first.
    pub fn take(&self, component: &str, is_up: impl Fn(&str) -> bool) -> Result<(), String> {
        let mut held = self.held.lock();
        held.retain(|c| c == component || !is_up(c));
        if held.contains(component) || held.len() < self.max {
            held.insert(component.to_owned());
            return Ok(());
        }
        let mut others: Vec<&String> = held.iter().collect();
        others.sort();
        Err(format!(
            "disruption budget of {} exhausted: automation already holds {} down",
            self.max,
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Frees the room a component held.
    pub fn release(&self, component: &str) {
        self.held.lock().remove(component);
    }

    /// Components held now.
    pub fn held(&self) -> usize {
        self.held.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_needs_a_sandbox_mark_or_a_failed_repair() {
        let plain = Facts::default();
        assert!(permitted("stop_kernel", &plain).is_err());
        assert!(permitted("quarantine", &plain).is_err());
        for f in [
            Facts {
                sandboxed: true,
                ..plain.clone()
            },
            Facts {
                left_down: true,
                ..plain.clone()
            },
            Facts {
                repair_failed: true,
                ..plain.clone()
            },
        ] {
            assert!(permitted("stop_kernel", &f).is_ok(), "{f:?}");
        }
        assert!(
            permitted("restart_kernel", &plain).is_ok(),
            "not disruptive"
        );
    }

    #[test]
    fn serve_restarts_only_on_evidence_against_serve() {
        assert!(permitted("restart_service", &Facts::default()).is_err());
        let f = Facts {
            serve_is_cause: true,
            ..Facts::default()
        };
        assert!(permitted("restart_service", &f).is_ok());
    }

    #[test]
    fn the_budget_bounds_components_not_actions() {
        let b = DisruptionBudget::new(1);
        let down = |_: &str| false;
        assert!(b.take("a", down).is_ok());
        assert!(b.take("a", down).is_ok(), "the same component again");
        let e = b.take("b", down).expect_err("full");
        assert!(e.contains("holds a down"), "{e}");
        b.release("a");
        assert!(b.take("b", down).is_ok());
        assert_eq!(b.held(), 1);
        // b is up again: its room comes back without a release.
        assert!(b.take("c", |c| c == "b").is_ok());
        assert_eq!(b.held(), 1);
    }
}
