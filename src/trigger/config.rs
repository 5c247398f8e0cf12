//! The `[triggers]` section of `grace.toml`: shared settings, then one
//! `[triggers.<name>]` table per trigger and `[[triggers.exec]]` checks.
//!
//! Every trigger table takes the same common keys (`enabled`, `interval`, `for`,
//! `repeat_interval`, `playbook`, `flap_high`, `flap_low`) and its own thresholds.
//! Defaults are DESIGN.md's trigger table.

use std::time::Duration;

use serde::Deserialize;

use super::flap::FlapThresholds;
use super::rule::Rule;
pub use super::sections::*;

/// `[triggers]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggersConfig {
    /// Whether the built-in triggers run (triggers a library user adds always do).
    pub enabled: bool,
    /// Least time between two publications of a condition that keeps holding; the
    /// incident store counts them as occurrences of the open incident.
    #[serde(with = "humantime_serde")]
    pub repeat_interval: Duration,
    /// Whether flap detection runs.
    pub flap_detection: bool,
    /// Percent state change at which a condition starts flapping.
    pub flap_high: f64,
    /// Percent state change below which it stops flapping.
    pub flap_low: f64,
    /// `[triggers.heartbeat_failure]`.
    pub heartbeat_failure: HeartbeatFailureConfig,
    /// `[triggers.critical_heartbeat]`.
    pub critical_heartbeat: CriticalHeartbeatConfig,
    /// `[triggers.api_timeout]`.
    pub api_timeout: ApiTimeoutConfig,
    /// `[triggers.kpi_threshold]`.
    pub kpi_threshold: KpiThresholdConfig,
    /// `[triggers.latency_queue]`.
    pub latency_queue: LatencyQueueConfig,
    /// `[triggers.resource_spike]`.
    pub resource_spike: ResourceSpikeConfig,
    /// `[triggers.trust_score]`.
    pub trust_score: TrustScoreConfig,
    /// `[triggers.sandbox_failure]`.
    pub sandbox_failure: SandboxFailureConfig,
    /// `[triggers.event_anomaly]`.
    pub event_anomaly: EventAnomalyConfig,
    /// `[triggers.config_drift]`.
    pub config_drift: ConfigDriftConfig,
    /// `[triggers.model_integrity]`.
    pub model_integrity: ModelIntegrityConfig,
    /// `[triggers.repeated_error]`.
    pub repeated_error: RepeatedErrorConfig,
    /// `[triggers.scheduled]`.
    pub scheduled: ScheduledConfig,
    /// `[[triggers.exec]]`: user commands whose non-zero exit is an incident.
    pub exec: Vec<ExecTriggerConfig>,
}

impl Default for TriggersConfig {
    fn default() -> Self {
        TriggersConfig {
            enabled: true,
            repeat_interval: Duration::from_secs(300),
            flap_detection: true,
            flap_high: 50.0,
            flap_low: 25.0,
            heartbeat_failure: Default::default(),
            critical_heartbeat: Default::default(),
            api_timeout: Default::default(),
            kpi_threshold: Default::default(),
            latency_queue: Default::default(),
            resource_spike: Default::default(),
            trust_score: Default::default(),
            sandbox_failure: Default::default(),
            event_anomaly: Default::default(),
            config_drift: Default::default(),
            model_integrity: Default::default(),
            repeated_error: Default::default(),
            scheduled: Default::default(),
            exec: Vec::new(),
        }
    }
}

impl TriggersConfig {
    /// The rule of a trigger table: its own keys over the shared ones.
    pub fn rule(&self, c: Common<'_>) -> Rule {
        Rule {
            interval: c.interval,
            hold_for: c.hold_for,
            repeat_interval: c.repeat_interval.unwrap_or(self.repeat_interval),
            flap: FlapThresholds {
                enabled: self.flap_detection,
                high: c.flap_high.unwrap_or(self.flap_high),
                low: c.flap_low.unwrap_or(self.flap_low),
            },
        }
    }

    /// Enables the built-in triggers `keep` names and disables every other one (for
    /// tests and embedders that want one trigger at a time).
    pub fn enable_only(&mut self, keep: &[&str]) {
        for (name, on) in [
            ("heartbeat_failure", &mut self.heartbeat_failure.enabled),
            ("critical_heartbeat", &mut self.critical_heartbeat.enabled),
            ("api_timeout", &mut self.api_timeout.enabled),
            ("kpi_threshold", &mut self.kpi_threshold.enabled),
            ("latency_queue", &mut self.latency_queue.enabled),
            ("resource_spike", &mut self.resource_spike.enabled),
            ("trust_score", &mut self.trust_score.enabled),
            ("sandbox_failure", &mut self.sandbox_failure.enabled),
            ("event_anomaly", &mut self.event_anomaly.enabled),
            ("config_drift", &mut self.config_drift.enabled),
            ("model_integrity", &mut self.model_integrity.enabled),
            ("repeated_error", &mut self.repeated_error.enabled),
            ("scheduled", &mut self.scheduled.enabled),
        ] {
            *on = keep.contains(&name);
        }
    }

    /// The common keys of every trigger table, by trigger name.
    pub fn sections(&self) -> Vec<(&'static str, bool, Common<'_>)> {
        vec![
            (
                "heartbeat_failure",
                self.heartbeat_failure.enabled,
                self.heartbeat_failure.common(),
            ),
            (
                "critical_heartbeat",
                self.critical_heartbeat.enabled,
                self.critical_heartbeat.common(),
            ),
            (
                "api_timeout",
                self.api_timeout.enabled,
                self.api_timeout.common(),
            ),
            (
                "kpi_threshold",
                self.kpi_threshold.enabled,
                self.kpi_threshold.common(),
            ),
            (
                "latency_queue",
                self.latency_queue.enabled,
                self.latency_queue.common(),
            ),
            (
                "resource_spike",
                self.resource_spike.enabled,
                self.resource_spike.common(),
            ),
            (
                "trust_score",
                self.trust_score.enabled,
                self.trust_score.common(),
            ),
            (
                "sandbox_failure",
                self.sandbox_failure.enabled,
                self.sandbox_failure.common(),
            ),
            (
                "event_anomaly",
                self.event_anomaly.enabled,
                self.event_anomaly.common(),
            ),
            (
                "config_drift",
                self.config_drift.enabled,
                self.config_drift.common(),
            ),
            (
                "model_integrity",
                self.model_integrity.enabled,
                self.model_integrity.common(),
            ),
            (
                "repeated_error",
                self.repeated_error.enabled,
                self.repeated_error.common(),
            ),
            ("scheduled", self.scheduled.enabled, self.scheduled.common()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_only_covers_every_section() {
        let mut t = TriggersConfig::default();
        t.enable_only(&["scheduled"]);
        let on: Vec<&str> = t
            .sections()
            .into_iter()
            .filter(|(_, enabled, _)| *enabled)
            .map(|(n, ..)| n)
            .collect();
        assert_eq!(on, ["scheduled"]);
    }

    #[test]
    fn the_embedded_default_shows_the_defaults() {
        let c = crate::config::parse(
            crate::config::DEFAULT_TOML,
            crate::config::ConfigSource::Embedded,
        )
        .expect("default parses");
        assert_eq!(c.config.triggers, TriggersConfig::default());
        assert!(TriggersConfig::default().validate().is_ok());
    }

    #[test]
    fn sections_take_the_common_keys_and_reject_unknown_ones() {
        let t: TriggersConfig = toml::from_str(
            r#"
            repeat_interval = "1m"
            [heartbeat_failure]
            interval = "2s"
            for = "10s"
            playbook = "my_restart"
            flap_high = 60.0
            [[exec]]
            name = "ping"
            command = "true"
            playbook = "restart_service"
            "#,
        )
        .expect("parses");
        let hb = &t.heartbeat_failure;
        assert_eq!(hb.playbook_or("restart_kernel"), "my_restart");
        let r = t.rule(hb.common());
        assert_eq!(r.interval, Duration::from_secs(2));
        assert_eq!(r.hold_for, Duration::from_secs(10));
        assert_eq!(r.repeat_interval, Duration::from_secs(60));
        assert_eq!((r.flap.high, r.flap.low), (60.0, 25.0));
        assert_eq!(t.exec[0].interval, Duration::from_secs(30));
        let bad = toml::from_str::<TriggersConfig>("[api_timeout]\nwindow_s = 5\n");
        assert!(bad.is_err_and(|e| e.to_string().contains("window_s")));
        assert!(toml::from_str::<TriggersConfig>("[nope]\n").is_err());
    }

    #[test]
    fn invalid_settings_name_their_section_and_key() {
        let mut t = TriggersConfig::default();
        t.scheduled.cron = Some("61 * * * *".into());
        let e = t.validate().expect_err("bad cron").to_string();
        assert!(e.starts_with("[triggers.scheduled] cron:"), "{e}");
        let t = TriggersConfig {
            flap_low: 70.0,
            ..Default::default()
        };
        assert!(t.validate().is_err());
        let e: ExecTriggerConfig =
            toml::from_str("name = \"a\"\ncommand = \"true\"\nplaybook = \"x\"").expect("exec");
        let t = TriggersConfig {
            exec: vec![e.clone(), e],
            ..Default::default()
        };
        assert!(t
            .validate()
            .expect_err("twice")
            .to_string()
            .contains("used twice"));
        let mut t = TriggersConfig::default();
        t.event_anomaly.topics = vec!["kernel.nothing".into()];
        assert!(t.validate().is_err());
    }

    #[test]
    fn grace_check_reports_the_file_and_line_of_a_bad_trigger_setting() {
        let text = "[heartbeat]\n\n[triggers.scheduled]\ncron = \"*/0 * * * *\"\n";
        let e = crate::config::parse(text, crate::config::ConfigSource::File("g.toml".into()))
            .expect_err("rejected");
        assert!(e.0.starts_with("g.toml:4:1: "), "{}", e.0);
        assert!(e.0.contains("cron"), "{}", e.0);
    }
}
