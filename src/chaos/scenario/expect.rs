//! Expectations: what the system must have done (or must not have done) during a
//! scenario, besides coming back to its steady state, and their checks.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The statuses an incident can have, for `status:` in an incident match.
pub const INCIDENT_STATUSES: &[&str] = &[
    "open",
    "mitigating",
    "verifying",
    "resolved",
    "failed",
    "escalated",
];

/// What an incident expectation matches (every field given must match; `status` and
/// `closed_reason` take one value or a list of accepted ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentMatch {
    /// The trigger (`resource_spike`).
    #[serde(default)]
    pub trigger: Option<String>,
    /// The component (`worker_pool`).
    #[serde(default)]
    pub component: Option<String>,
    /// The failure mode (`port_in_use`).
    #[serde(default)]
    pub failure_mode: Option<String>,
    /// The playbook that answered it (`shed_load`).
    #[serde(default)]
    pub playbook: Option<String>,
    /// Whether it must have been resolved.
    #[serde(default)]
    pub resolved: bool,
    /// The status it must have (`failed`), or any of a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub status: Option<Vec<String>>,
    /// Why it must have been closed (`verification_failed`), or any of a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub closed_reason: Option<Vec<String>>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

impl IncidentMatch {
    /// Whether an incident with these fields matches.
    pub fn matches(
        &self,
        trigger: &str,
        component: &str,
        failure_mode: &str,
        playbook: Option<&str>,
        status: &str,
        closed_reason: Option<&str>,
    ) -> bool {
        self.trigger.as_deref().is_none_or(|v| v == trigger)
            && self.component.as_deref().is_none_or(|v| v == component)
            && self
                .failure_mode
                .as_deref()
                .is_none_or(|v| v == failure_mode)
            && self.playbook.as_deref().is_none_or(|v| Some(v) == playbook)
            && (!self.resolved || status == "resolved")
            && self
                .status
                .as_ref()
                .is_none_or(|v| v.iter().any(|s| s == status))
            && self
                .closed_reason
                .as_ref()
                .is_none_or(|v| closed_reason.is_some_and(|r| v.iter().any(|s| s == r)))
    }

    fn label(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("trigger", &self.trigger),
            ("component", &self.component),
            ("failure_mode", &self.failure_mode),
            ("playbook", &self.playbook),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        if self.resolved {
            parts.push("resolved".to_owned());
        }
        for (k, v) in [
            ("status", &self.status),
            ("closed_reason", &self.closed_reason),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", v.join("|")));
            }
        }
        parts.join(", ")
    }
}

/// Something the system must have done during the scenario.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    /// An incident matching this opened after the first injection.
    Incident(IncidentMatch),
    /// No incident matching this opened from the first injection until
    /// [`Expectation::QUIET`] after the last fault ended.
    NoIncident(IncidentMatch),
    /// At the end no incident at all (opened before the scenario or during it) is
    /// still open, mitigating or verifying: none was left behind.
    NoOpenIncidentsAtEnd,
    /// The kernel's restart count went up.
    KernelRestarted(String),
    /// At the end the kernel is in this state (`failed`, `running`, ...), whether it
    /// changed during the scenario or not.
    KernelState {
        /// The kernel.
        kernel: String,
        /// The state.
        state: String,
    },
    /// Serve came back as a new process (its pid in `serve.json` changed).
    ServeRestarted,
    /// Serve stayed the same process throughout (its pid in `serve.json` never
    /// changed).
    ServeNotRestarted,
    /// Serve did not answer `/health` at any time in this window (offsets from the start
    /// of injection): what was stopped stays stopped.
    ServeDown {
        /// Window start.
        #[serde(with = "humantime_serde")]
        from: Duration,
        /// Window end.
        #[serde(with = "humantime_serde")]
        to: Duration,
    },
    /// Every corrupted file outside `snapshots/` has its content from before the fault
    /// again (restored by the system, not by the harness's cleanup). A corrupted
    /// snapshot is to be skipped by restores, not repaired.
    FilesRestored,
    /// An alert file of this severity (`critical`, `warning`, `info`) was written after
    /// the first injection.
    Alert(String),
}

impl Expectation {
    /// How long after the last fault ends an incident a `no_incident` rules out is
    /// still looked for (a trigger holding its condition for a few seconds fires late).
    pub const QUIET: Duration = Duration::from_secs(5);

    /// A short label.
    pub fn label(&self) -> String {
        match self {
            Expectation::Incident(m) => format!("incident({})", m.label()),
            Expectation::NoIncident(m) => format!("no_incident({})", m.label()),
            Expectation::NoOpenIncidentsAtEnd => "no_open_incidents_at_end".to_owned(),
            Expectation::KernelRestarted(k) => format!("kernel_restarted({k})"),
            Expectation::KernelState { kernel, state } => format!("kernel_state({kernel}={state})"),
            Expectation::ServeRestarted => "serve_restarted".to_owned(),
            Expectation::ServeNotRestarted => "serve_not_restarted".to_owned(),
            Expectation::ServeDown { from, to } => {
                format!("serve_down({}s..{}s)", from.as_secs_f64(), to.as_secs_f64())
            }
            Expectation::FilesRestored => "files_restored".to_owned(),
            Expectation::Alert(s) => format!("alert({s})"),
        }
    }

    /// The checks parsing alone cannot make.
    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Expectation::ServeDown { from, to } if from >= to => Err(format!(
                "expectation serve_down: `from` ({from:?}) must be before `to` ({to:?})"
            )),
            Expectation::Alert(s) if !matches!(s.as_str(), "critical" | "warning" | "info") => Err(
                format!("expectation alert: severity {s:?} is not one of critical, warning, info"),
            ),
            Expectation::Incident(m) | Expectation::NoIncident(m) => {
                let bad = m
                    .status
                    .iter()
                    .flatten()
                    .find(|s| !INCIDENT_STATUSES.contains(&s.as_str()));
                match bad {
                    Some(s) => Err(format!(
                        "expectation {}: status {s:?} is not one of {}",
                        self.label(),
                        INCIDENT_STATUSES.join(", ")
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}
