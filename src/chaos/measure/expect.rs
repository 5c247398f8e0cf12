//! Expectations: whether each one holds, given what the timeline and the runner's
//! facts show up to the last observation.

use serde::{Deserialize, Serialize};

use super::timing::{kernel_disturbed, pid_changed, probe_ok_at};
use super::{Facts, Timeline};
use crate::chaos::scenario::Expectation;

/// Whether an expectation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// It holds.
    Met,
    /// It does not, and cannot any more.
    Unmet,
    /// Not yet seen; it may still happen.
    Pending,
}

/// An expectation with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// Its label.
    pub label: String,
    /// The result.
    pub status: Check,
    /// What was seen.
    pub detail: String,
}

/// The status of one expectation given what was seen up to `now` (the last
/// observation); the first injection was at `first`.
pub fn expectation_status(
    e: &Expectation,
    tl: &Timeline,
    facts: &Facts,
    first: f64,
    now: f64,
) -> (Check, String) {
    let pending = |what: &str| (Check::Pending, format!("{what} not seen"));
    match e {
        Expectation::Incident(m) => {
            let hit = tl.incidents.iter().find(|i| {
                i.opened >= first
                    && m.trigger.as_ref().is_none_or(|v| *v == i.trigger)
                    && m.component.as_ref().is_none_or(|v| *v == i.component)
                    && m.failure_mode.as_ref().is_none_or(|v| *v == i.failure_mode)
                    && m.playbook
                        .as_ref()
                        .is_none_or(|v| i.playbook.as_ref() == Some(v))
                    && (!m.resolved || i.status == "resolved")
            });
            match hit {
                Some(i) => (
                    Check::Met,
                    format!("{} at {:.3}s ({})", i.id, i.opened, i.status),
                ),
                None => pending("a matching incident"),
            }
        }
        Expectation::KernelRestarted(k) => match kernel_disturbed(tl, k, first, true) {
            Some(t) => (Check::Met, format!("restart seen at {t:.3}s")),
            None => pending("a restart"),
        },
        Expectation::KernelState { kernel, state } => {
            let last = tl.kernels.iter().rev().find(|e| e.kernel == *kernel);
            match last {
                Some(e) if e.state == *state && e.t >= first => {
                    (Check::Met, format!("{state} since {:.3}s", e.t))
                }
                Some(e) => (Check::Pending, format!("{} is {}", kernel, e.state)),
                None => pending("the kernel"),
            }
        }
        Expectation::ServeRestarted => match pid_changed(&tl.serve_pids, first) {
            Some((t, p)) => (Check::Met, format!("new serve pid {p} at {t:.3}s")),
            None => pending("a new serve pid"),
        },
        Expectation::ServeDown { from, to } => {
            let (from, to) = (from.as_secs_f64(), to.as_secs_f64());
            let health = tl.probes.get("health_ok").map(Vec::as_slice).unwrap_or(&[]);
            let up_at_start = probe_ok_at(health, from);
            let up_inside = health.iter().find(|c| c.t > from && c.t <= to && c.ok);
            if up_at_start == Some(true) {
                (
                    Check::Unmet,
                    format!("serve answered /health at {from:.3}s"),
                )
            } else if let Some(c) = up_inside {
                (
                    Check::Unmet,
                    format!("serve answered /health at {:.3}s", c.t),
                )
            } else if now < to || up_at_start.is_none() {
                (Check::Pending, "window not over".to_owned())
            } else {
                (Check::Met, format!("no answer from {from:.3}s to {to:.3}s"))
            }
        }
        Expectation::FilesRestored => match facts.files_restored {
            Some(true) => (
                Check::Met,
                "every corrupted file has its old content".to_owned(),
            ),
            Some(false) => pending("the restore"),
            None => (
                Check::Unmet,
                "no file outside snapshots/ was corrupted".to_owned(),
            ),
        },
        Expectation::Alert(sev) => {
            match tl
                .alerts
                .iter()
                .find(|a| a.t >= first && a.severity == *sev)
            {
                Some(a) => (Check::Met, format!("{} at {:.3}s", a.file, a.t)),
                None => pending("an alert"),
            }
        }
    }
}
