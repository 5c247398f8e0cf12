//! The Alertmanager notifier: Grace's alerts posted to Alertmanager's API v2
//! (`POST /api/v2/alerts`), so its routes, grouping, silences and receivers apply.
//!
//! An alert that names an incident fires until that incident closes: it is posted
//! with no `endsAt`, and again every `[alerts] alertmanager_resend` (Alertmanager ends
//! an alert nobody re-posts after its `resolve_timeout`); the `incident.closed` alert
//! posts each of them once more with `endsAt` set to the close, which clears them. Any
//! other alert (a crash loop, an escalation, a damaged audit log) is an event: posted
//! with `endsAt` `alertmanager_event_hold` after it was raised. A failed post is logged
//! and retried with backoff on a thread of its own ([`sender`]); raising an alert only
//! queues it, so an absent Alertmanager never holds up the dispatcher or the watchdog.

mod model;
mod sender;

use std::sync::OnceLock;

use model::{change, Origin};

use super::{Alert, AlertsConfig};
use crate::state::{ServeInfo, StatePaths};

/// Hands `alert` to the sender of `cfg.alertmanager_url` (if set), as the change it
/// makes in Alertmanager. Returns at once.
pub(crate) fn notify(paths: &StatePaths, cfg: &AlertsConfig, alert: &Alert) {
    let Some(url) = &cfg.alertmanager_url else {
        return;
    };
    let origin = Origin {
        instance: cfg
            .alertmanager_instance
            .clone()
            .unwrap_or_else(|| hostname().to_owned()),
        generator_url: cfg.dashboard_url.clone().or_else(|| dashboard_of(paths)),
        event_hold: cfg.alertmanager_event_hold,
        min_severity: cfg.notify_min_severity,
    };
    if let Some(c) = change(alert, &origin) {
        let target = sender::Target {
            url: url.clone(),
            timeout: cfg.alertmanager_timeout,
            resend: cfg.alertmanager_resend,
        };
        sender::submit(&target, c);
    }
}

/// The dashboard of the serve that runs on `paths` (from `serve.json`).
fn dashboard_of(paths: &StatePaths) -> Option<String> {
    let info = ServeInfo::read(paths).ok()??;
    Some(format!("http://{}/", info.health_addr()))
}

/// This host's name (the default `instance` label).
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}
