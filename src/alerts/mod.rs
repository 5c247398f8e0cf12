//! Alerts: files under `alerts/`, `latest_notification.json`, webhook and command notifiers.
