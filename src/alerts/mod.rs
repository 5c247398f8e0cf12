//! Alerts: files under `alerts/`, `latest_notification.json`, webhook and command notifiers.

mod config;

pub use config::AlertsConfig;
