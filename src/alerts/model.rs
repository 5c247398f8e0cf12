//! What an alert is: its severity, the alert file and `latest_notification.json`.

use serde::{Deserialize, Serialize};

/// How urgent an alert is (also the prefix of its file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Something went wrong and was handled.
    Warning,
    /// A human must look.
    Critical,
}

impl Severity {
    /// `info`, `warning`, `critical`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The content of `alerts/<severity>_<YYYYmmdd_HHMMSS>_<n>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertFile {
    /// What happened (`watchdog.crash_loop`, `serve.hung`, ...).
    pub event_type: String,
    /// When (RFC 3339).
    pub timestamp: String,
    /// The details, with `severity` and `summary` added.
    pub payload: serde_json::Value,
}

/// The content of `alerts/latest_notification.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestNotification {
    /// Its severity.
    pub severity: Severity,
    /// When (RFC 3339).
    pub timestamp: String,
    /// The event type.
    pub event: String,
    /// One line for a human.
    pub summary: String,
    /// Whether a human must act (critical alerts).
    pub requires_attention: bool,
}

/// One raised alert, as notifiers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its severity.
    pub severity: Severity,
    /// The event type.
    pub event_type: String,
    /// When (RFC 3339).
    pub timestamp: String,
    /// One line for a human.
    pub summary: String,
    /// The details.
    pub payload: serde_json::Value,
    /// The file it was written to.
    pub file: std::path::PathBuf,
}
