//! Expectations: whether each one holds, given what the timeline and the runner's
//! facts show up to the last observation.

use serde::{Deserialize, Serialize};

use super::timing::{kernel_disturbed, pid_changed, probe_ok_at};
use super::IncidentSpan;
use super::{Facts, Timeline};
use crate::chaos::scenario::{Expectation, IncidentMatch};

/// The first incident opened at or after `first` that `m` matches.
fn matching<'a>(tl: &'a Timeline, m: &IncidentMatch, first: f64) -> Option<&'a IncidentSpan> {
    tl.incidents.iter().find(|i| {
        i.opened >= first
            && m.matches(
                &i.trigger,
                &i.component,
                &i.failure_mode,
                i.playbook.as_deref(),
                &i.status,
                i.closed_reason.as_deref(),
            )
    })
}

/// An incident's status, with why it was closed when it was.
fn closed(i: &IncidentSpan) -> String {
    match &i.closed_reason {
        Some(r) => format!("{}, {r}", i.status),
        None => i.status.clone(),
    }
}

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
        Expectation::Incident(m) => match matching(tl, m, first) {
            Some(i) => (
                Check::Met,
                format!("{} at {:.3}s ({})", i.id, i.opened, closed(i)),
            ),
            None => pending("a matching incident"),
        },
        Expectation::NoIncident(m) => match matching(tl, m, first) {
            Some(i) => (
                Check::Unmet,
                format!("{} at {:.3}s ({})", i.id, i.opened, closed(i)),
            ),
            None => {
                let quiet = Expectation::QUIET.as_secs_f64();
                match facts.faults_ended_at {
                    Some(end) if now >= end + quiet => (
                        Check::Met,
                        format!("none opened up to {quiet}s after the last fault"),
                    ),
                    _ => (
                        Check::Pending,
                        format!("watched until {quiet}s after the last fault"),
                    ),
                }
            }
        },
        Expectation::NoOpenIncidentsAtEnd => {
            let probe = tl
                .probes
                .get("no_open_incidents")
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if probe_ok_at(probe, now) == Some(true) {
                (Check::Met, "no incident is open".to_owned())
            } else {
                let open: Vec<String> = tl
                    .incidents
                    .iter()
                    .filter(|i| i.is_open())
                    .map(|i| format!("{} ({}, {})", i.id, i.trigger, i.status))
                    .collect();
                let detail = if open.is_empty() {
                    "an incident is still open".to_owned()
                } else {
                    format!("still open: {}", open.join(", "))
                };
                (Check::Pending, detail)
            }
        }
        Expectation::ServeNotRestarted => match pid_changed(&tl.serve_pids, first) {
            Some((t, p)) => (Check::Unmet, format!("new serve pid {p} at {t:.3}s")),
            None => (Check::Met, "the same serve pid throughout".to_owned()),
        },
        Expectation::KernelRestarted(k) => match kernel_disturbed(tl, k, first, true) {
            Some(t) => (Check::Met, format!("restart seen at {t:.3}s")),
            None => pending("a restart"),
        },
        Expectation::KernelState { kernel, state } => {
            let last = tl.kernels.iter().rev().find(|e| e.kernel == *kernel);
            match last {
                Some(e) if e.state == *state => (Check::Met, format!("{state} since {:.3}s", e.t)),
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
