//! The `[alerts]` section of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

use super::Severity;

/// Settings of the alerts section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// POST every alert (as JSON) to this `http://` URL.
    pub webhook: Option<String>,
    /// Timeout of one webhook POST.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Run this command (argv) for every alert, the alert JSON on stdin and in
    /// `GRACE_ALERT`, the severity in `GRACE_ALERT_SEVERITY`.
    pub command: Vec<String>,
    /// Timeout of the command; it is killed past it.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Notifiers (webhook, command) get alerts of this severity and above; files are
    /// written for every alert.
    pub notify_min_severity: Severity,
    /// Keep at most this many alert files.
    pub keep_files: usize,
    /// Delete alert files older than this.
    #[serde(with = "humantime_serde")]
    pub keep_for: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook: None,
            webhook_timeout: Duration::from_secs(5),
            command: Vec::new(),
            command_timeout: Duration::from_secs(10),
            notify_min_severity: Severity::Warning,
            keep_files: 500,
            keep_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}
