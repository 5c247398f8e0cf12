//! Checks of the `[triggers]` section beyond its shape: ranges, patterns, cron
//! expressions, unique exec names. `grace check` reports these.

use std::collections::HashSet;
use std::time::Duration;

use super::config::TriggersConfig;
use super::cron::Cron;
use super::error::TriggerError;

fn percent(t: &str, key: &str, v: f64) -> Result<(), TriggerError> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(TriggerError::config(
            t,
            key,
            format!("{v} is not a percentage; use 0 to 100"),
        ))
    }
}

fn positive(t: &str, key: &str, d: Duration) -> Result<(), TriggerError> {
    if d.is_zero() {
        Err(TriggerError::config(
            t,
            key,
            "must be longer than zero (e.g. \"5s\")",
        ))
    } else {
        Ok(())
    }
}

fn window(t: &str, d: Duration) -> Result<(), TriggerError> {
    positive(t, "window", d)?;
    if d > Duration::from_secs(crate::trigger::signals::MAX_WINDOW_SECS) {
        return Err(TriggerError::config(
            t,
            "window",
            "at most 300s of requests are kept",
        ));
    }
    Ok(())
}

fn globs(t: &str, patterns: &[String]) -> Result<(), TriggerError> {
    for p in patterns {
        glob::Pattern::new(p)
            .map_err(|e| TriggerError::config(t, "paths", format!("{p:?}: {e}")))?;
    }
    Ok(())
}

impl TriggersConfig {
    /// Checks every setting; the first problem is returned with its section and key.
    pub fn validate(&self) -> Result<(), TriggerError> {
        percent("triggers", "flap_high", self.flap_high)?;
        percent("triggers", "flap_low", self.flap_low)?;
        positive("triggers", "repeat_interval", self.repeat_interval)?;
        let mut sections: Vec<_> = (self.sections().into_iter())
            .map(|(t, _, c)| (t.to_owned(), c))
            .collect();
        sections.extend(
            self.exec
                .iter()
                .map(|e| (format!("exec.{}", e.name), e.common())),
        );
        for (t, c) in &sections {
            positive(t, "interval", c.interval)?;
            let rule = self.rule(*c);
            percent(t, "flap_high", rule.flap.high)?;
            percent(t, "flap_low", rule.flap.low)?;
            if rule.flap.low > rule.flap.high {
                return Err(TriggerError::config(
                    t,
                    "flap_low",
                    "must not be above flap_high",
                ));
            }
            if c.playbook.is_some_and(str::is_empty) {
                return Err(TriggerError::config(t, "playbook", "must name a playbook"));
            }
        }
        let ch = &self.critical_heartbeat;
        if !(ch.late_fraction > 0.0 && ch.late_fraction < 1.0) {
            return Err(TriggerError::config(
                "critical_heartbeat",
                "late_fraction",
                "must be between 0 and 1",
            ));
        }
        if ch.emergency_min < 2 {
            return Err(TriggerError::config(
                "critical_heartbeat",
                "emergency_min",
                "must be at least 2",
            ));
        }
        window("api_timeout", self.api_timeout.window)?;
        if self.api_timeout.min_timeouts == 0 {
            return Err(TriggerError::config(
                "api_timeout",
                "min_timeouts",
                "must be at least 1",
            ));
        }
        window("kpi_threshold", self.kpi_threshold.window)?;
        if self.kpi_threshold.p95_ms <= 0.0 {
            return Err(TriggerError::config(
                "kpi_threshold",
                "p95_ms",
                "must be above 0",
            ));
        }
        let r = &self.resource_spike;
        percent("resource_spike", "cpu_percent", r.cpu_percent)?;
        percent("resource_spike", "memory_percent", r.memory_percent)?;
        percent("resource_spike", "disk_percent", r.disk_percent)?;
        if self
            .trust_score
            .min_score
            .is_some_and(|m| !(0.0..=1.0).contains(&m))
        {
            return Err(TriggerError::config(
                "trust_score",
                "min_score",
                "must be between 0 and 1",
            ));
        }
        let a = &self.event_anomaly;
        positive("event_anomaly", "bucket", a.bucket)?;
        if !(a.alpha > 0.0 && a.alpha <= 1.0) {
            return Err(TriggerError::config(
                "event_anomaly",
                "alpha",
                "must be in (0, 1]",
            ));
        }
        if a.factor < 1.0 {
            return Err(TriggerError::config(
                "event_anomaly",
                "factor",
                "must be at least 1",
            ));
        }
        for t in &a.topics {
            if crate::bus::Topic::ALL.iter().all(|topic| !topic.matches(t)) {
                return Err(TriggerError::config(
                    "event_anomaly",
                    "topics",
                    format!("{t:?} matches no event topic"),
                ));
            }
        }
        globs("config_drift", &self.config_drift.paths)?;
        if self.config_drift.accept_marker.is_empty()
            || self.config_drift.accept_marker.contains('/')
        {
            return Err(TriggerError::config(
                "config_drift",
                "accept_marker",
                "must be a plain file name",
            ));
        }
        globs("model_integrity", &self.model_integrity.paths)?;
        if self.repeated_error.threshold == 0 {
            return Err(TriggerError::config(
                "repeated_error",
                "threshold",
                "must be at least 1",
            ));
        }
        positive("repeated_error", "window", self.repeated_error.window)?;
        positive("scheduled", "every", self.scheduled.every)?;
        if let Some(c) = &self.scheduled.cron {
            c.parse::<Cron>()
                .map_err(|e| TriggerError::config("scheduled", "cron", format!("{c:?}: {e}")))?;
        }
        let mut seen = HashSet::new();
        for e in &self.exec {
            let t = format!("exec.{}", e.name);
            if e.name.is_empty()
                || !e
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(TriggerError::config(
                    &t,
                    "name",
                    format!("{:?}: use letters, digits, _ and -", e.name),
                ));
            }
            if !seen.insert(&e.name) {
                return Err(TriggerError::config(
                    &t,
                    "name",
                    format!(
                        "{:?} is used twice; give each exec trigger its own name",
                        e.name
                    ),
                ));
            }
            if e.command.trim().is_empty() {
                return Err(TriggerError::config(&t, "command", "must not be empty"));
            }
            positive(&t, "timeout", e.timeout)?;
        }
        Ok(())
    }
}
