//! The health verdict of `GET /health` (liveness: always 200 while serve answers, with
//! the verdict in the body) and `GET /ready` (readiness: 200 healthy, 503 degraded).
//!
//! Serve is `degraded` when a kernel is down (stopped, failed or left down by its
//! supervisor, restarting for longer than a moment, a critical kernel still starting),
//! when an incident is open, mitigating or verifying, when the incident store could not
//! make its records durable lately, or when emergency mode is on; each cause is one line
//! of `reasons`. The verdict reads shared state only (atomics and
//! the incident store's in-memory index), so it is cheap enough for every probe.

use serde::Serialize;

use crate::incident::Incident;
use crate::kernel::KernelState;

pub use super::facts::{IncidentBrief, KernelFacts, OpenCounts};

/// How long a kernel may be restarting before it counts as down: a supervisor's
/// restart takes microseconds, so a kernel still restarting after this is in backoff or
/// stuck.
pub const RESTART_MOMENT_MS: u64 = 1_000;
/// Open incidents named one by one in `reasons` (the rest are counted).
pub const NAMED_INCIDENTS: usize = 5;
/// Open incidents listed in `open_incidents` at most.
pub const LISTED_INCIDENTS: usize = 20;
/// The kernel that keeps the incident journal and the audit log durable
/// (`src/incident/kernel.rs`): it syncs both at every tick and fails when the disk
/// refuses, with a reason that starts with [`SYNC_FAILED`].
pub const DURABLE_KERNEL: &str = "incident_log";
/// How the durable kernel's failure reason starts when a sync failed.
pub const SYNC_FAILED: &str = "durable sync failed";
/// How long a failed sync keeps serve degraded, at least (and at least three ticks of
/// the durable kernel): a disk that keeps refusing fails every tick, so the cause stays
/// listed until syncs have succeeded for this long.
pub const DURABLE_WINDOW_MS: u64 = 30_000;

/// Kernel counts by state, as shown by `/health` and the dashboard.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct KernelCounts {
    /// All registered kernels.
    pub total: usize,
    /// Running (healthy).
    pub running: usize,
    /// Failed, restarting, or stopped.
    pub failed: usize,
    /// Running but degraded.
    pub degraded: usize,
}

/// One kernel that is not healthy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelProblem {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: KernelState,
    /// Whether it is critical.
    pub critical: bool,
    /// Its last restart or failure reason.
    pub reason: Option<String>,
}

/// The body of `GET /health` and `GET /ready`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `healthy` or `degraded`.
    pub status: &'static str,
    /// Why it is degraded, one cause a line (empty when healthy).
    pub reasons: Vec<String>,
    /// RFC 3339 time of the answer.
    pub timestamp: String,
    /// This serve's process id.
    pub pid: u32,
    /// Seconds since the HTTP server started.
    pub uptime_s: f64,
    /// Counts by state.
    pub kernels: KernelCounts,
    /// Kernels that are not running (failed, restarting, stopped), even for a moment.
    pub failed: Vec<KernelProblem>,
    /// Kernels that run but report degraded health (listed, not a cause of `degraded`).
    pub degraded: Vec<KernelProblem>,
    /// Names of the kernels that count as down: each makes serve `degraded`.
    pub down: Vec<String>,
    /// Names of critical kernels that are not up.
    pub critical_down: Vec<String>,
    /// Incidents still being worked on (open, mitigating, verifying).
    pub incidents: OpenCounts,
    /// The oldest of them (at most [`LISTED_INCIDENTS`]).
    pub open_incidents: Vec<IncidentBrief>,
    /// Why the incident store could not write a record, or its last sync failed lately.
    pub durability_error: Option<String>,
    /// Whether emergency mode is on.
    pub emergency: bool,
}

impl HealthReport {
    /// Whether serve is healthy: no kernel down, no open incident, no emergency mode.
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Counts kernels by state (a starting kernel counts only in the total).
pub fn count_kernels<K: KernelFacts>(kernels: &[K]) -> KernelCounts {
    let mut c = KernelCounts {
        total: kernels.len(),
        ..KernelCounts::default()
    };
    for k in kernels {
        match k.state() {
            KernelState::Running => c.running += 1,
            KernelState::Degraded => c.degraded += 1,
            KernelState::Failed | KernelState::Restarting | KernelState::Stopped => c.failed += 1,
            KernelState::Starting => {}
        }
    }
    c
}

/// Whether a kernel counts as down, and how to say it. A restart in progress counts
/// once it lasts longer than [`RESTART_MOMENT_MS`] (or for how long is not known); a
/// kernel starting counts when it is critical or has been down longer than that.
fn down_reason<K: KernelFacts>(k: &K) -> Option<String> {
    let lasting = || k.down_for_ms().is_none_or(|ms| ms > RESTART_MOMENT_MS);
    let what = match k.state() {
        KernelState::Running | KernelState::Degraded => return None,
        KernelState::Stopped => "stopped".to_owned(),
        KernelState::Failed => "failed, left down by its supervisor".to_owned(),
        KernelState::Restarting if lasting() => match k.down_for_ms() {
            Some(ms) => format!("restarting for {:.1} s", ms as f64 / 1000.0),
            None => "restarting".to_owned(),
        },
        KernelState::Starting
            if k.critical() || k.down_for_ms().is_some_and(|ms| ms > RESTART_MOMENT_MS) =>
        {
            "starting".to_owned()
        }
        KernelState::Restarting | KernelState::Starting => return None,
    };
    let critical = if k.critical() { "critical " } else { "" };
    let why = k.reason().map(|r| format!(" ({r})")).unwrap_or_default();
    Some(format!("{critical}kernel {} {what}{why}", k.name()))
}

/// The incident store's durability error: the durable kernel's failure reason, when a
/// sync failed within [`DURABLE_WINDOW_MS`] (or three of its ticks, if longer).
fn durability_error<K: KernelFacts>(kernels: &[K]) -> Option<String> {
    let k = kernels.iter().find(|k| k.name() == DURABLE_KERNEL)?;
    let reason = k.reason().filter(|r| r.contains(SYNC_FAILED))?;
    let window = DURABLE_WINDOW_MS.max(k.tick_ms().saturating_mul(3));
    (k.down_for_ms()? <= window).then_some(reason)
}

/// The inputs of a verdict besides the kernels.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// RFC 3339 time of the answer.
    pub timestamp: String,
    /// Seconds since the HTTP server started.
    pub uptime_s: f64,
    /// Whether emergency mode is on.
    pub emergency: bool,
    /// The incident store's own durability error (an incident or audit record it could
    /// not write), if any.
    pub durability_error: Option<String>,
}

/// Decides health from the kernels and the open incidents (`open` as the incident
/// store keeps them; closed ones in it are ignored).
pub fn assess<K: KernelFacts>(kernels: &[K], open: &[Incident], ctx: Context) -> HealthReport {
    let mut failed = Vec::new();
    let mut degraded = Vec::new();
    let mut critical_down = Vec::new();
    let mut down = Vec::new();
    let mut reasons = Vec::new();
    for k in kernels {
        let state = k.state();
        if k.critical() && !state.is_up() {
            critical_down.push(k.name().to_owned());
        }
        if let Some(r) = down_reason(k) {
            down.push(k.name().to_owned());
            reasons.push(r);
        }
        let list = match state {
            KernelState::Failed | KernelState::Restarting | KernelState::Stopped => &mut failed,
            KernelState::Degraded => &mut degraded,
            KernelState::Running | KernelState::Starting => continue,
        };
        list.push(KernelProblem {
            name: k.name().to_owned(),
            state,
            critical: k.critical(),
            reason: k.reason(),
        });
    }
    let still_open: Vec<&Incident> = open.iter().filter(|i| i.status.is_open()).collect();
    for i in still_open.iter().take(NAMED_INCIDENTS) {
        reasons.push(format!(
            "incident {} {}: {} on {}",
            i.incident_id,
            i.status.as_str(),
            i.trigger,
            i.component
        ));
    }
    if still_open.len() > NAMED_INCIDENTS {
        reasons.push(format!(
            "{} more incidents open",
            still_open.len() - NAMED_INCIDENTS
        ));
    }
    let durability_error = ctx
        .durability_error
        .clone()
        .or_else(|| durability_error(kernels));
    if let Some(e) = &durability_error {
        reasons.push(format!("incident store not durable: {e}"));
    }
    if ctx.emergency {
        reasons.push("emergency mode on".to_owned());
    }
    HealthReport {
        status: if reasons.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        reasons,
        timestamp: ctx.timestamp,
        pid: std::process::id(),
        uptime_s: ctx.uptime_s,
        kernels: count_kernels(kernels),
        failed,
        degraded,
        down,
        critical_down,
        incidents: OpenCounts::of(open),
        open_incidents: still_open
            .iter()
            .take(LISTED_INCIDENTS)
            .map(|i| IncidentBrief::from(*i))
            .collect(),
        durability_error,
        emergency: ctx.emergency,
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
