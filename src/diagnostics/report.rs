//! The diagnostic report: evidence, diagnosis, what was applied and what was escalated,
//! written as JSON to `<state>/diagnostics/diag_<timestamp>_<component>.json`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classify::{Diagnosis, Fix};
use super::evidence::Evidence;

/// What applying one fix did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixOutcome {
    /// The fix.
    #[serde(flatten)]
    pub fix: Fix,
    /// Whether it succeeded.
    pub ok: bool,
    /// Its output, or the error.
    pub result: Value,
    /// How long it took, ms.
    pub duration_ms: u64,
}

/// What one escalation channel did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelOutcome {
    /// `command` or `webhook`.
    pub channel: String,
    /// Whether it succeeded (exit status 0; HTTP 2xx).
    pub ok: bool,
    /// Exit status and output, or HTTP status, or the error.
    pub detail: String,
}

/// The fixes handed to a human or an external agent, and through which channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// When.
    pub at: String,
    /// The fixes not applied automatically.
    pub fixes: Vec<Fix>,
    /// The channels tried (none configured: only the `incident.escalated` event).
    pub channels: Vec<ChannelOutcome>,
}

/// A diagnostic report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticReport {
    /// `diag_<timestamp>_<component>`.
    pub report_id: String,
    /// When the diagnosis was made (RFC 3339, microseconds).
    pub created_at: String,
    /// The component.
    pub component: String,
    /// The incident, if any.
    pub incident_id: Option<String>,
    /// Where the report is written.
    pub path: PathBuf,
    /// The evidence.
    pub evidence: Evidence,
    /// The classification.
    pub diagnosis: Diagnosis,
    /// The safe fixes applied automatically, in order.
    pub applied: Vec<FixOutcome>,
    /// What was escalated, if anything.
    pub escalation: Option<Escalation>,
}

fn sanitize(component: &str) -> String {
    let s: String = component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "component".to_owned()
    } else {
        s
    }
}

/// The report id for a diagnosis of `component` made at `at`.
pub fn report_id(at: DateTime<Utc>, component: &str) -> String {
    format!(
        "diag_{}_{:06}_{}",
        at.format("%Y%m%d_%H%M%S"),
        at.timestamp_subsec_micros(),
        sanitize(component)
    )
}

/// A path for report `id` in `dir` that no report uses yet.
pub fn free_path(dir: &Path, id: &str) -> PathBuf {
    let first = dir.join(format!("{id}.json"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("{id}_{n}.json")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

impl DiagnosticReport {
    /// Writes the report to its path atomically.
    pub fn write(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::state::atomic_write(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_file_name_safe() {
        let at = DateTime::parse_from_rfc3339("2025-11-17T16:43:28.024197Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            report_id(at, "worker"),
            "diag_20251117_164328_024197_worker"
        );
        assert_eq!(
            report_id(at, "../etc/passwd"),
            "diag_20251117_164328_024197_.._etc_passwd"
        );
        assert_eq!(report_id(at, ".."), "diag_20251117_164328_024197_component");
    }
}
