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
    /// Notifiers (webhook, command, Alertmanager) get alerts of this severity and
    /// above; files are written for every alert.
    pub notify_min_severity: Severity,
    /// Keep at most this many alert files.
    pub keep_files: usize,
    /// Delete alert files older than this.
    #[serde(with = "humantime_serde")]
    pub keep_for: Duration,
    /// Post alerts to this Alertmanager (`http://host:port`, API v2 under it).
    pub alertmanager_url: Option<String>,
    /// Timeout of one post to Alertmanager.
    #[serde(with = "humantime_serde")]
    pub alertmanager_timeout: Duration,
    /// How often alerts still firing (their incident open) are posted again; keep it
    /// well under Alertmanager's `resolve_timeout` (5 m by default), which ends an
    /// alert nobody re-posts.
    #[serde(with = "humantime_serde")]
    pub alertmanager_resend: Duration,
    /// How long an alert that is an event (a crash loop, an escalation, not an open
    /// incident) stays firing in Alertmanager: its `endsAt` is this after it was raised.
    #[serde(with = "humantime_serde")]
    pub alertmanager_event_hold: Duration,
    /// The `instance` label of posted alerts (default: the host name).
    pub alertmanager_instance: Option<String>,
    /// Where operators open the dashboard: the `generatorURL` of posted alerts
    /// (default: `http://<serve's address>/` from `serve.json`).
    pub dashboard_url: Option<String>,
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
            alertmanager_url: None,
            alertmanager_timeout: Duration::from_secs(5),
            alertmanager_resend: Duration::from_secs(60),
            alertmanager_event_hold: Duration::from_secs(3600),
            alertmanager_instance: None,
            dashboard_url: None,
        }
    }
}

impl AlertsConfig {
    /// Checks what serde cannot: the URLs are `http://` URLs, the Alertmanager
    /// intervals are above zero. The error names the key and the fix.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let urls = [
            ("webhook", &self.webhook),
            ("alertmanager_url", &self.alertmanager_url),
            ("dashboard_url", &self.dashboard_url),
        ];
        for (key, url) in urls {
            if let Some(u) = url {
                if let Err(why) = super::notify::parse_http_url(u) {
                    return Err((
                        key,
                        format!("[alerts] {key} = {u:?}: {why}; give an http://host:port URL"),
                    ));
                }
            }
        }
        let spans = [
            ("alertmanager_timeout", self.alertmanager_timeout),
            ("alertmanager_resend", self.alertmanager_resend),
            ("alertmanager_event_hold", self.alertmanager_event_hold),
        ];
        for (key, d) in spans {
            if d.is_zero() {
                return Err((
                    key,
                    format!("[alerts] {key} must be above zero (e.g. \"1m\")"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_key() {
        assert!(AlertsConfig::default().validate().is_ok());
        let c: AlertsConfig =
            toml::from_str("alertmanager_url = \"https://am:9093\"").expect("parse");
        assert_eq!(c.validate().map_err(|e| e.0), Err("alertmanager_url"));
        let c: AlertsConfig = toml::from_str("alertmanager_resend = \"0s\"").expect("parse");
        assert_eq!(c.validate().map_err(|e| e.0), Err("alertmanager_resend"));
        let c: AlertsConfig =
            toml::from_str("alertmanager_url = \"http://127.0.0.1:9093\"").expect("parse");
        assert!(c.validate().is_ok());
    }
}
