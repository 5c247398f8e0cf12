//! The `[diagnostics]` section of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

/// Settings of the diagnostics section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// Apply the fixes marked safe (restart a dependency, shed load, clear caches)
    /// without asking (default true); the rest are always escalated.
    pub auto_apply_safe: bool,
    /// A shell command (`sh -c`) run to escalate, with the report's path in
    /// `GRACE_DIAGNOSTIC_REPORT` (and `GRACE_COMPONENT`, `GRACE_ROOT_CAUSE`,
    /// `GRACE_INCIDENT_ID`).
    pub escalate_command: Option<String>,
    /// An `http://` URL the report is POSTed to as JSON to escalate.
    pub escalate_webhook: Option<String>,
    /// How long the escalation command or webhook may take (default 10 s).
    #[serde(with = "humantime_serde")]
    pub escalate_timeout: Duration,
    /// How long one automatic fix may take (default 10 s).
    #[serde(with = "humantime_serde")]
    pub fix_timeout: Duration,
    /// How far back recent incidents and config drift count as evidence (default 15 min).
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    /// CPU use (percent) above which resources count as a cause (default 85).
    pub cpu_percent: f64,
    /// Memory use (percent) above which resources count as a cause (default 80).
    pub memory_percent: f64,
    /// Disk use (percent, of the state directory's file system) above which resources
    /// count as a cause (default 90).
    pub disk_percent: f64,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        DiagnosticsConfig {
            auto_apply_safe: true,
            escalate_command: None,
            escalate_webhook: None,
            escalate_timeout: Duration::from_secs(10),
            fix_timeout: Duration::from_secs(10),
            lookback: Duration::from_secs(15 * 60),
            cpu_percent: 85.0,
            memory_percent: 80.0,
            disk_percent: 90.0,
        }
    }
}
