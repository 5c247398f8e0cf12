//! The `[watchdog]` section of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

/// Settings of the watchdog section. Durations are humantime strings (`"5s"`, `"250ms"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// The command to supervise instead of `grace serve` (argv; empty: serve).
    pub command: Vec<String>,
    /// How often a running serve's `GET /health` is probed.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// How long one health probe may take before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub health_timeout: Duration,
    /// Consecutive failed probes after which a serve is declared hung and killed.
    pub health_failures: u32,
    /// Whether to probe health at all. Default: yes for serve, no for a custom
    /// `command` unless `health_port` is set.
    pub health_check: Option<bool>,
    /// Probe this port instead of the one in `serve.json`.
    pub health_port: Option<u16>,
    /// A start that exits before this, or is not healthy by then, is a failed start; a
    /// serve healthy and up this long resets the failure count and the backoff.
    #[serde(with = "humantime_serde")]
    pub min_uptime: Duration,
    /// How long a start may take to answer `GET /health` with 200 before it is killed
    /// as a failed start.
    #[serde(with = "humantime_serde")]
    pub ready_timeout: Duration,
    /// Failed starts in a row after which the watchdog pauses and raises a critical alert.
    pub max_consecutive_failures: u32,
    /// The pause after `max_consecutive_failures`.
    #[serde(with = "humantime_serde")]
    pub pause_after_failures: Duration,
    /// Delay before the second restart in a row (the first is immediate); doubles per
    /// further failure.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Upper bound of the backoff delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Random jitter as a fraction of the delay (0.2: ±20%).
    pub backoff_jitter: f64,
    /// Graceful stop: time between SIGTERM and SIGKILL of serve's process group.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            command: Vec::new(),
            check_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
            health_failures: 3,
            health_check: None,
            health_port: None,
            min_uptime: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(60),
            max_consecutive_failures: 5,
            pause_after_failures: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            backoff_jitter: 0.2,
            stop_timeout: Duration::from_secs(10),
        }
    }
}

impl WatchdogConfig {
    /// Whether health is probed, after the defaults are applied.
    pub fn probes_health(&self) -> bool {
        self.health_check
            .unwrap_or(self.command.is_empty() || self.health_port.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_and_keeps_seed_defaults() {
        let c: WatchdogConfig =
            toml::from_str("command = [\"sh\", \"-c\", \"exit 1\"]\nmin_uptime = \"200ms\"\n")
                .expect("parse");
        assert_eq!(c.min_uptime, Duration::from_millis(200));
        assert_eq!(c.check_interval, Duration::from_secs(5));
        assert_eq!(c.max_consecutive_failures, 5);
        assert!(!c.probes_health());
        assert!(WatchdogConfig::default().probes_health());
        assert!(toml::from_str::<WatchdogConfig>("bogus = 1").is_err());
    }
}
