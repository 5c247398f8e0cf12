//! The periodic `actor_metrics` record: one summary of every actor per interval
//! (`[telemetry] metrics_interval`, default 60 s), readable with
//! `jq 'select(.message == "actor_metrics") | .fields'`: how many actors, running,
//! down, busy (messages waiting), the messages handled and restarts since the last
//! summary, the slowest actor by p99 handling time, and the [`TOP_N`] slowest.
//!
//! Each actor's own figures (`actor`, `kind`, `messages`, `mailbox`, `restarts`,
//! `uptime_s`, `heartbeat_age_ms`, `handle_p50_us`, `handle_p99_us`) are records
//! `actor_metrics.actor` at debug level (`RUST_LOG=grace::metrics=debug`), and always
//! on `/metrics` and `/api/kernels`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::kernel::{KernelState, StatusSnapshot};
use crate::tree::System;

/// How many actors the summary names as the slowest.
pub const TOP_N: usize = 5;

/// The figures of one `actor_metrics` summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Actors registered.
    pub actors: usize,
    /// In state running.
    pub running: usize,
    /// Not up (restarting, failed, stopped).
    pub down: usize,
    /// With messages waiting in their mailbox.
    pub busy: usize,
    /// Messages handled by all actors since the last summary (heartbeat ticks included).
    pub messages: u64,
    /// Restarts since the last summary.
    pub restarts: u64,
    /// The actors with the highest p99 handling time, slowest first: (name, p99 µs).
    pub top: Vec<(String, f64)>,
}

impl Summary {
    /// Sums `snaps` up; `last` holds each actor's (messages, restarts) at the previous
    /// summary and is updated.
    pub fn of(snaps: &[StatusSnapshot], last: &mut HashMap<String, (u64, u64)>) -> Summary {
        let mut s = Summary {
            actors: snaps.len(),
            ..Summary::default()
        };
        for x in snaps {
            s.running += usize::from(x.state == KernelState::Running);
            s.down += usize::from(!x.state.is_up());
            s.busy += usize::from(x.mailbox > 0);
            let (m0, r0) = last
                .insert(x.name.clone(), (x.messages, x.restarts))
                .unwrap_or((0, 0));
            // A counter that went back (a new incarnation) counts from zero.
            s.messages += x.messages.checked_sub(m0).unwrap_or(x.messages);
            s.restarts += x.restarts.checked_sub(r0).unwrap_or(x.restarts);
        }
        let mut by_p99: Vec<(String, f64)> = snaps
            .iter()
            .filter(|x| x.handle_p99_us > 0.0)
            .map(|x| (x.name.clone(), x.handle_p99_us))
            .collect();
        by_p99.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        by_p99.truncate(TOP_N);
        s.top = by_p99;
        s
    }

    /// `name=p99us` of the slowest actors, space-separated.
    pub fn top_text(&self) -> String {
        self.top
            .iter()
            .map(|(n, p99)| format!("{n}={p99:.0}us"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Logs one `actor_metrics` summary (and, at debug level, one record per actor).
/// `kind_of` names an actor's kind (`system`, `trigger`, `kernel`).
pub fn report_once(
    system: &System,
    kind_of: &dyn Fn(&str) -> &'static str,
    last: &mut HashMap<String, (u64, u64)>,
) -> Summary {
    let snaps: Vec<StatusSnapshot> = system
        .registry
        .statuses()
        .iter()
        .map(|s| s.snapshot())
        .collect();
    let s = Summary::of(&snaps, last);
    let (slowest, slowest_p99_us) = s.top.first().cloned().unwrap_or_default();
    tracing::info!(
        target: "grace::metrics",
        actors = s.actors,
        running = s.running,
        down = s.down,
        busy = s.busy,
        messages = s.messages,
        restarts = s.restarts,
        slowest,
        slowest_p99_us,
        top = s.top_text(),
        "actor_metrics"
    );
    for x in &snaps {
        tracing::debug!(
            target: "grace::metrics",
            actor = %x.name,
            kind = kind_of(&x.name),
            state = ?x.state,
            messages = x.messages,
            mailbox = x.mailbox,
            restarts = x.restarts,
            uptime_s = x.uptime_s,
            heartbeat_age_ms = x.heartbeat_age_ms,
            handle_p50_us = x.handle_p50_us,
            handle_p99_us = x.handle_p99_us,
            "actor_metrics.actor"
        );
    }
    s
}

/// Spawns the reporter: a summary every `interval` until the task is aborted.
pub fn spawn_reporter(
    system: Arc<System>,
    interval: Duration,
    kind_of: Arc<dyn Fn(&str) -> &'static str + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(100));
        // The first summary comes soon after start, so a fresh serve shows its actors.
        let first = tokio::time::Instant::now() + interval.min(Duration::from_secs(2));
        let mut tick = tokio::time::interval_at(first, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = HashMap::new();
        loop {
            tick.tick().await;
            report_once(&system, kind_of.as_ref(), &mut last);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Isolation;

    fn snap(
        name: &str,
        state: KernelState,
        messages: u64,
        mailbox: u64,
        p99: f64,
    ) -> StatusSnapshot {
        StatusSnapshot {
            name: name.to_owned(),
            state,
            critical: false,
            isolation: Isolation::Task,
            restarts: 0,
            last_reason: None,
            heartbeat_age_ms: 0,
            heartbeat_timeout_ms: 0,
            uptime_s: 1.0,
            messages,
            mailbox,
            handle_p50_us: p99 / 2.0,
            handle_p99_us: p99,
        }
    }

    #[test]
    fn sums_counts_deltas_and_the_slowest() {
        let mut last = HashMap::new();
        let a = [
            snap("a", KernelState::Running, 10, 0, 5.0),
            snap("b", KernelState::Failed, 4, 2, 0.0),
            snap("c", KernelState::Running, 1, 0, 90.0),
        ];
        let s = Summary::of(&a, &mut last);
        assert_eq!(
            (s.actors, s.running, s.down, s.busy, s.messages),
            (3, 2, 1, 1, 15)
        );
        assert_eq!(s.top, vec![("c".to_owned(), 90.0), ("a".to_owned(), 5.0)]);
        assert_eq!(s.top_text(), "c=90us a=5us");
        let b = [snap("a", KernelState::Running, 13, 0, 5.0)];
        assert_eq!(Summary::of(&b, &mut last).messages, 3);
    }
}
