//! The incident record (DESIGN.md, "Incidents and the audit log") and the draft a
//! trigger publishes to open one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Detected, nothing done yet.
    Open,
    /// A playbook is running.
    Mitigating,
    /// The playbook has ended; the steady-state check decides the verdict.
    Verifying,
    /// Recovery verified: the steady-state check passed for its whole window.
    Resolved,
    /// Handed to a human or an external agent.
    Escalated,
    /// Remediation failed, or the service did not recover.
    Failed,
}

impl IncidentStatus {
    /// Whether the incident is still open (open, mitigating or verifying).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::Open | IncidentStatus::Mitigating | IncidentStatus::Verifying
        )
    }

    /// The name as written in `incidents.jsonl` (`open`, `resolved`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Mitigating => "mitigating",
            IncidentStatus::Verifying => "verifying",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Escalated => "escalated",
            IncidentStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a trigger publishes (as the payload of `event.incident`, `event.emergency` or
/// `event.early_warning`) to have an incident opened and remediated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDraft {
    /// The trigger that fired (`heartbeat_failure`, ...).
    pub trigger: String,
    /// The component concerned (a kernel name, `serve`, `host`, ...).
    pub component: String,
    /// The failure mode (`heartbeat_failure`, `port_in_use`, `kernel_panic`, ...).
    pub failure_mode: String,
    /// Severity.
    pub severity: Severity,
    /// The playbook to run; None lets the dispatcher choose by trigger.
    #[serde(default)]
    pub playbook: Option<String>,
    /// One line for humans.
    pub summary: String,
    /// Trigger-specific evidence.
    #[serde(default)]
    pub details: Value,
    /// When the fault was detected (RFC 3339, microseconds); None: now.
    #[serde(default)]
    pub detected_at: Option<String>,
}

/// One executed playbook step, as recorded in the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's name.
    pub name: String,
    /// Its action.
    pub action: String,
    /// `ok`, `failed`, `skipped`, `timed_out` or `dry_run`.
    pub status: String,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The action's output or error.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub output: Value,
    /// Whether the incident's component (a kernel) was up just before the step acted
    /// (None: not a kernel, or the step did not act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_before: Option<bool>,
    /// Whether it was up just after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_after: Option<bool>,
}

impl StepRecord {
    /// Whether the step left its component less available than it found it: up before,
    /// down after.
    pub fn harmed(&self) -> bool {
        self.available_before == Some(true) && self.available_after == Some(false)
    }
}

/// An incident, as written to `incidents.jsonl` (one object per state change; readers
/// fold them by `incident_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc_YYYYmmdd_HHMMSS_micros`.
    pub incident_id: String,
    /// RFC 3339, microseconds.
    pub detected_at: String,
    /// RFC 3339, microseconds; set once resolved, escalated or failed.
    #[serde(default)]
    pub resolved_at: Option<String>,
    /// Status.
    pub status: IncidentStatus,
    /// Failure mode.
    pub failure_mode: String,
    /// Severity.
    pub severity: Severity,
    /// Component.
    pub component: String,
    /// Trigger.
    pub trigger: String,
    /// Playbook run (or chosen).
    #[serde(default)]
    pub playbook: Option<String>,
    /// Steps run so far.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// resolved_at − detected_at, seconds.
    #[serde(default)]
    pub mttr_seconds: Option<f64>,
    /// Whether remediation succeeded (None while open).
    #[serde(default)]
    pub success: Option<bool>,
    /// Times the same (trigger, component) fired while this incident was open, this
    /// one included.
    pub occurrences: u64,
    /// One line for humans.
    #[serde(default)]
    pub summary: String,
    /// Trigger evidence.
    #[serde(default)]
    pub details: Value,
    /// Why a closed incident was closed (None while open, and in records written before
    /// the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<ClosedReason>,
}

/// Why an incident was closed (`closed_reason` in `incidents.jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClosedReason {
    /// The playbook acted and the steady-state check passed for its window.
    Verified,
    /// Nothing the playbook did changed anything, but the steady-state check passed: the
    /// service recovered by itself (for example its supervisor restarted it first).
    RecoveredWithoutAction,
    /// A restart of serve (or of its watchdog) ended the fault; the check passed after it.
    RecoveredByRestart,
    /// The playbook ran but the steady-state check did not pass within its window.
    VerificationFailed,
    /// A playbook step failed.
    RemediationFailed,
    /// Handed to a human (no playbook, approval required, rate limited, flapping).
    Escalated,
    /// The playbook ran, but nothing could check the service afterwards (no probe
    /// gave evidence): handed to a human rather than called resolved.
    Unverified,
    /// An earlier run left it open and its condition could not be checked again.
    Abandoned,
}

impl ClosedReason {
    /// The name as written in `incidents.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedReason::Verified => "verified",
            ClosedReason::RecoveredWithoutAction => "recovered_without_action",
            ClosedReason::RecoveredByRestart => "recovered_by_restart",
            ClosedReason::VerificationFailed => "verification_failed",
            ClosedReason::RemediationFailed => "remediation_failed",
            ClosedReason::Escalated => "escalated",
            ClosedReason::Unverified => "unverified",
            ClosedReason::Abandoned => "abandoned",
        }
    }
}

impl std::fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`crate::incident::IncidentStore::open`] did with a draft.
// Returned once per trigger firing and never stored in bulk, so the size difference
// between the variants costs nothing worth a box in every caller's pattern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A new incident was opened.
    New(Incident),
    /// An incident for the same (trigger, component) is already open: only its
    /// occurrences were counted.
    Repeat {
        /// The open incident.
        incident_id: String,
        /// Its occurrences, this one included.
        occurrences: u64,
    },
}

impl Opened {
    /// The id of the new or already open incident.
    pub fn incident_id(&self) -> &str {
        match self {
            Opened::New(i) => &i.incident_id,
            Opened::Repeat { incident_id, .. } => incident_id,
        }
    }

    /// Whether a new incident was opened.
    pub fn is_new(&self) -> bool {
        matches!(self, Opened::New(_))
    }
}
