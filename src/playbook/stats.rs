//! Dispatcher counters, shared with the dashboard: lock-free totals plus per-playbook
//! counts.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde::Serialize;

/// Counts of one playbook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlaybookCounts {
    /// Runs started.
    pub runs: u64,
    /// Runs that remediated their incident.
    pub successes: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Runs refused by the rate limit or the cooldown.
    pub rate_limited: u64,
    /// Runs over their SLO.
    pub slo_missed: u64,
}

/// The dispatcher's counters. One value lives as long as the dispatcher, across
/// restarts of the `self_healing` kernel.
#[derive(Debug, Default)]
pub struct DispatcherStats {
    received: AtomicU64,
    repeats: AtomicU64,
    runs: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    escalated: AtomicU64,
    rate_limited: AtomicU64,
    unmatched: AtomicU64,
    informational: AtomicU64,
    slo_missed: AtomicU64,
    running: AtomicU64,
    queued: AtomicU64,
    per_playbook: DashMap<String, PlaybookCounts>,
}

/// A plain copy of [`DispatcherStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Incident events received.
    pub received: u64,
    /// Events that repeated an open incident (counted, not run).
    pub repeats: u64,
    /// Playbook runs started.
    pub runs: u64,
    /// Runs whose incident's recovery was verified.
    pub successes: u64,
    /// Runs that failed, or whose incident did not recover.
    pub failures: u64,
    /// Incidents escalated.
    pub escalated: u64,
    /// Runs refused by a rate limit or cooldown.
    pub rate_limited: u64,
    /// Incidents no playbook answered.
    pub unmatched: u64,
    /// Conditions recorded for information only: nothing Grace runs can act on them.
    pub informational: u64,
    /// Runs over their SLO.
    pub slo_missed: u64,
    /// Runs in progress now.
    pub running: u64,
    /// Runs waiting for a free slot (`max_concurrent`).
    pub queued: u64,
    /// Counts per playbook, by name.
    pub per_playbook: std::collections::BTreeMap<String, PlaybookCounts>,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Received,
    Repeat,
    Escalated,
    Unmatched,
    Informational,
}

impl DispatcherStats {
    pub(crate) fn bump(&self, c: Count) {
        let a = match c {
            Count::Received => &self.received,
            Count::Repeat => &self.repeats,
            Count::Escalated => &self.escalated,
            Count::Unmatched => &self.unmatched,
            Count::Informational => &self.informational,
        };
        a.fetch_add(1, Ordering::Relaxed);
    }

    fn playbook(&self, name: &str, f: impl FnOnce(&mut PlaybookCounts)) {
        f(&mut self.per_playbook.entry(name.to_owned()).or_default());
    }

    pub(crate) fn rate_limited(&self, playbook: &str) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.playbook(playbook, |c| c.rate_limited += 1);
    }

    pub(crate) fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn started(&self, playbook: &str) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.playbook(playbook, |c| c.runs += 1);
    }

    pub(crate) fn finished(&self, playbook: &str, success: bool, slo_met: Option<bool>) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let missed = slo_met == Some(false);
        if missed {
            self.slo_missed.fetch_add(1, Ordering::Relaxed);
        }
        if success {
            self.successes.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.playbook(playbook, |c| {
            if success {
                c.successes += 1;
            } else {
                c.failures += 1;
            }
            if missed {
                c.slo_missed += 1;
            }
        });
    }

    /// Runs in progress.
    pub fn running(&self) -> u64 {
        self.running.load(Ordering::Relaxed)
    }

    /// A plain copy.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: l(&self.received),
            repeats: l(&self.repeats),
            runs: l(&self.runs),
            successes: l(&self.successes),
            failures: l(&self.failures),
            escalated: l(&self.escalated),
            rate_limited: l(&self.rate_limited),
            unmatched: l(&self.unmatched),
            informational: l(&self.informational),
            slo_missed: l(&self.slo_missed),
            running: l(&self.running),
            queued: l(&self.queued),
            per_playbook: self
                .per_playbook
                .iter()
                .map(|e| (e.key().clone(), *e.value()))
                .collect(),
        }
    }
}
