//! The `[diagnostics]` section of `grace.toml`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    #[serde(deserialize_with = "http_url")]
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
    #[serde(deserialize_with = "percent")]
    pub cpu_percent: f64,
    /// Memory use (percent) above which resources count as a cause (default 80).
    #[serde(deserialize_with = "percent")]
    pub memory_percent: f64,
    /// Disk use (percent, of the state directory's file system) above which resources
    /// count as a cause (default 90).
    #[serde(deserialize_with = "percent")]
    pub disk_percent: f64,
}

fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range: a percentage is between 0 and 100"
        )))
    }
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = String::deserialize(d)?;
    match v.parse::<hyper::Uri>() {
        Ok(u) if u.scheme_str() == Some("http") && u.host().is_some() => Ok(Some(v)),
        Ok(_) => Err(serde::de::Error::custom(format!(
            "{v:?}: escalate_webhook takes an http:// URL with a host (https is not supported; \
             use escalate_command with curl for it)"
        ))),
        Err(e) => Err(serde::de::Error::custom(format!("{v:?} is not a URL: {e}"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_values() {
        let c: DiagnosticsConfig = toml::from_str(
            "auto_apply_safe = false\nescalate_webhook = \"http://127.0.0.1:9000/hook\"\nfix_timeout = \"2s\"",
        )
        .expect("parse");
        assert!(!c.auto_apply_safe);
        assert_eq!(c.fix_timeout, Duration::from_secs(2));
        for bad in [
            "escalate_webhook = \"https://example.com\"",
            "cpu_percent = 150",
            "escalate = true",
        ] {
            assert!(toml::from_str::<DiagnosticsConfig>(bad).is_err(), "{bad}");
        }
    }
}
