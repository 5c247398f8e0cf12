//! The periodic `actor_metrics` events: one log event per actor with the fields
//! DESIGN.md names, readable with `jq 'select(.message == "actor_metrics")'`.

use std::sync::Arc;
use std::time::Duration;

use crate::tree::System;

/// Logs one `actor_metrics` event for every registered kernel. `kind_of` names the
/// actor's kind (`system`, `trigger`, `kernel`).
pub fn report_once(system: &System, kind_of: &dyn Fn(&str) -> &'static str) {
    for status in system.registry.statuses() {
        let s = status.snapshot();
        tracing::info!(
            target: "grace::metrics",
            actor = %s.name,
            kind = kind_of(&s.name),
            state = ?s.state,
            messages = s.messages,
            mailbox = s.mailbox,
            restarts = s.restarts,
            uptime_s = s.uptime_s,
            heartbeat_age_ms = s.heartbeat_age_ms,
            handle_p50_us = s.handle_p50_us,
            handle_p99_us = s.handle_p99_us,
            "actor_metrics"
        );
    }
}

/// Spawns the reporter: `report_once` every `interval` until the task is aborted.
pub fn spawn_reporter(
    system: Arc<System>,
    interval: Duration,
    kind_of: Arc<dyn Fn(&str) -> &'static str + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(100));
        // The first report comes soon after start, so a fresh serve shows its actors.
        let first = tokio::time::Instant::now() + interval.min(Duration::from_secs(2));
        let mut tick = tokio::time::interval_at(first, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            report_once(&system, kind_of.as_ref());
        }
    })
}
