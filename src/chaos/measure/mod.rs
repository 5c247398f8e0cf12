//! The pure part of the harness: what was observed (a [`Timeline`] of offsets in
//! seconds from the start of injection) and what it means: detection and recovery per
//! fault, expectations met or not, the SLO verdict and the resilience score.
//!
//! Nothing here does I/O or reads a clock, so every rule is unit-tested with made-up
//! timelines.

mod assess;
mod expect;
mod timing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use assess::{assess, Assessment, FaultOutcome};
pub use expect::{expectation_status, Check, ExpectationResult};
pub use timing::{detection, recovered_at, recovery_start, score, steady_ok_at};

/// A change of the steady state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteadyChange {
    /// When, seconds from the start of injection (negative before it).
    pub t: f64,
    /// Whether every steady-state probe passed.
    pub ok: bool,
    /// The probes that failed, with why.
    pub failing: Vec<String>,
}

/// A change of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeChange {
    /// When.
    pub t: f64,
    /// Whether it passed.
    pub ok: bool,
}

/// A kernel's restart count or state as seen in `/api/kernels` (recorded when either
/// changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelEvent {
    /// When.
    pub t: f64,
    /// The kernel.
    pub kernel: String,
    /// Its restart count.
    pub restarts: u64,
    /// Its state (`running`, `restarting`, ...).
    pub state: String,
}

/// An incident as seen in `/api/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSpan {
    /// Its id.
    pub id: String,
    /// The component.
    pub component: String,
    /// The trigger that opened it.
    pub trigger: String,
    /// The failure mode.
    pub failure_mode: String,
    /// The playbook that answered it.
    pub playbook: Option<String>,
    /// Its latest status.
    pub status: String,
    /// When it was detected (its `detected_at`).
    pub opened: f64,
    /// When it was resolved (its `resolved_at`).
    pub resolved: Option<f64>,
    /// Whether the remediation succeeded.
    pub success: Option<bool>,
    /// Its MTTR as the system recorded it.
    pub mttr_seconds: Option<f64>,
    /// Why it was closed (`verified`, `verification_failed`, ...).
    #[serde(default)]
    pub closed_reason: Option<String>,
}

impl IncidentSpan {
    /// Whether it is still being handled.
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "open" | "mitigating" | "verifying")
    }
}

/// A process id as read from `serve.json` or `watchdog.pid` (`None`: no file).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PidChange {
    /// When.
    pub t: f64,
    /// The pid.
    pub pid: Option<u32>,
}

/// An alert file that appeared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSeen {
    /// When it was first seen.
    pub t: f64,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// Its file name.
    pub file: String,
}

/// Everything the monitor saw during one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// When each observation was made (not in the report: it is long).
    #[serde(skip)]
    pub samples: Vec<f64>,
    /// Changes of the steady state.
    pub steady: Vec<SteadyChange>,
    /// Changes of each probe, by label (`health_ok` is always watched).
    pub probes: BTreeMap<String, Vec<ProbeChange>>,
    /// Kernel restart counts and states.
    pub kernels: Vec<KernelEvent>,
    /// Incidents opened after observation began.
    pub incidents: Vec<IncidentSpan>,
    /// serve's pid.
    pub serve_pids: Vec<PidChange>,
    /// The watchdog's pid.
    pub watchdog_pids: Vec<PidChange>,
    /// Alert files written after observation began.
    pub alerts: Vec<AlertSeen>,
    /// The last observation.
    pub end: f64,
}

/// What kind of thing a fault hits, for finding its detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class", content = "name")]
pub enum FaultClass {
    /// A kernel by name: detected by its incident or its restart.
    Kernel(String),
    /// The serve process: detected by an incident or a new serve pid.
    Serve,
    /// The watchdog process: detected by a new watchdog pid.
    Watchdog,
    /// Anything else (sieges, files, API): detected by an incident.
    Other,
    /// An operator action (the kill switch): nothing to detect.
    Operator,
}

/// One fault as it was carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Its label (`kill_kernel(message_bus)`).
    pub label: String,
    /// What it hits.
    pub class: FaultClass,
    /// When it was first injected.
    pub injected_at: f64,
    /// When it ended (its last repeat, its duration).
    pub ended_at: f64,
    /// Why it could not be injected, if so.
    pub error: Option<String>,
    /// Remarks (a capped siege, a file the harness had to put back).
    pub notes: Vec<String>,
    /// Whether the system is expected to recover while the fault still holds, by
    /// routing around it (serve moves off a port that someone else keeps; the
    /// watchdog replaces a stopped serve): recovery is then looked for from detection
    /// on, not from the fault's end.
    #[serde(default)]
    pub heals_during: bool,
}

/// Facts the runner establishes at the end (they need files, not the timeline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Whether every corrupted file outside `snapshots/` had its old content back
    /// before cleanup (`None`: no such file was corrupted).
    pub files_restored: Option<bool>,
    /// When the last fault ended, once every fault has (`None` while one still holds).
    #[serde(default)]
    pub faults_ended_at: Option<f64>,
}
