//! Heartbeats of a tree: one ticker task and one monitor task for all its kernels, whose
//! costs follow the work in progress, not the number of kernels.
//!
//! The ticker sends [`KernelMsg::Tick`] to every running kernel that
//! [ticks](crate::kernel::Kernel::ticks) when its `heartbeat_interval` is due; kernels
//! that do not tick get none. It keeps no timer per kernel. A kernel is due at the
//! multiples of its interval shifted by a phase derived from its name, which spreads
//! kernels started together over the interval ([`tick_due`]). The ticker wakes at a
//! fixed resolution and keeps the ticking kernels grouped by interval and sorted by
//! phase, so the kernels due since its last wake-up are one or two contiguous runs found
//! by binary search: the cost is per tick sent, not per kernel per wake-up. The groups
//! are rebuilt when the registry's generation changes (a kernel registered or removed)
//! or a kernel starts or stops ticking. At most one tick waits in a kernel's mailbox, so
//! a hung kernel's mailbox does not fill with ticks.
//!
//! The monitor ([`monitor`]) finds hung kernels from a deadline queue of busy kernels
//! and the list of ticking ones; an idle kernel that does not tick costs it nothing.

mod monitor;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::registry::KernelEntry;
use super::system::System;
use crate::config::HeartbeatConfig;
use crate::kernel::KernelMsg;
use crate::time::mono_ms;

/// The ticker wakes at least this often...
const MAX_RESOLUTION_MS: u64 = 100;
/// ...or, with short intervals, a quarter of the shortest, but not more often than this.
const MIN_RESOLUTION_MS: u64 = 5;

/// Payload of `kernel.heartbeat.missed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatMissed {
    /// The kernel.
    pub kernel: String,
    /// Age of its heartbeat when the monitor saw it, milliseconds.
    pub heartbeat_age_ms: u64,
    /// Its timeout, milliseconds.
    pub timeout_ms: u64,
    /// Its restarts so far (a later count means it has been restarted since).
    #[serde(default)]
    pub restarts: u64,
}

/// Whether a kernel with this `interval` and `phase` (ms) is due a tick in the window
/// `(prev, now]`: whether some instant `t` in it has `t + phase` a multiple of
/// `interval`.
pub fn tick_due(prev_ms: u64, now_ms: u64, interval_ms: u64, phase_ms: u64) -> bool {
    interval_ms > 0 && (now_ms + phase_ms) / interval_ms > (prev_ms + phase_ms) / interval_ms
}

/// The residue class of the instants at which a kernel with this phase is due: `t` with
/// `t % interval == due_residue(..)`.
fn due_residue(interval_ms: u64, phase_ms: u64) -> u64 {
    (interval_ms - phase_ms % interval_ms) % interval_ms
}

/// The residues `[lo, hi)` of the instants in the window `(prev, now]`, as at most two
/// ranges (the window may wrap around the interval); every residue when the window is
/// an interval or longer.
fn window_residues(interval_ms: u64, prev_ms: u64, now_ms: u64) -> [(u64, u64); 2] {
    if now_ms <= prev_ms {
        return [(0, 0), (0, 0)];
    }
    if now_ms - prev_ms >= interval_ms {
        return [(0, interval_ms), (0, 0)];
    }
    let (a, b) = ((prev_ms + 1) % interval_ms, now_ms % interval_ms);
    if a <= b {
        [(a, b + 1), (0, 0)]
    } else {
        [(a, interval_ms), (0, b + 1)]
    }
}

/// A kernel's phase within its interval, from its name (FNV-1a), so that kernels
/// started together do not all tick together.
pub fn tick_phase(name: &str, interval_ms: u64) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % interval_ms.max(1)
}

/// How long the ticker sleeps between wake-ups, given the shortest interval: ticks are
/// late by at most this much.
fn resolution_ms(min_interval_ms: u64) -> u64 {
    (min_interval_ms / 4).clamp(MIN_RESOLUTION_MS, MAX_RESOLUTION_MS)
}

/// The running ticker and monitor of a tree. Dropping it stops both.
pub struct HeartbeatHandle {
    ticker: JoinHandle<()>,
    monitor: JoinHandle<()>,
}

impl HeartbeatHandle {
    /// Stops the ticker and the monitor.
    pub fn stop(self) {
        drop(self);
    }

    /// Whether both tasks still run.
    pub fn is_running(&self) -> bool {
        !self.ticker.is_finished() && !self.monitor.is_finished()
    }
}

impl Drop for HeartbeatHandle {
    fn drop(&mut self) {
        self.ticker.abort();
        self.monitor.abort();
    }
}

/// Starts the ticker and the monitor of the tree whose kernels are in `system.registry`.
pub fn spawn_heartbeat(system: Arc<System>, cfg: HeartbeatConfig) -> HeartbeatHandle {
    HeartbeatHandle {
        ticker: tokio::spawn(ticker(system.clone())),
        monitor: tokio::spawn(monitor::run(system, cfg)),
    }
}

/// Registered kernels of one interval, sorted by [`due_residue`].
struct Group {
    interval: u64,
    members: Vec<(u64, Arc<KernelEntry>)>,
}

/// The ticker's index of every registered kernel that ticks.
#[derive(Default)]
struct TickIndex {
    generation: Option<(u64, u64)>,
    groups: Vec<Group>,
    min_interval: u64,
}

impl TickIndex {
    /// Rebuilds the index from the registry if kernels were registered or removed, or
    /// started or stopped ticking.
    fn refresh(&mut self, system: &System) {
        let generation = generations(system);
        if self.generation == Some(generation) {
            return;
        }
        self.generation = Some(generation);
        let mut by_interval: HashMap<u64, Vec<(u64, Arc<KernelEntry>)>> = HashMap::new();
        system.registry.for_each(|entry| {
            if !entry.status.ticks() {
                return;
            }
            let interval = entry.status.heartbeat_interval_ms().max(1);
            let residue = due_residue(interval, tick_phase(&entry.status.name, interval));
            by_interval
                .entry(interval)
                .or_default()
                .push((residue, entry.clone()));
        });
        self.min_interval = by_interval.keys().copied().min().unwrap_or(u64::MAX);
        self.groups = by_interval
            .into_iter()
            .map(|(interval, mut members)| {
                members.sort_unstable_by_key(|m| m.0);
                Group { interval, members }
            })
            .collect();
    }

    /// Sends a tick to every kernel due in `(prev, now]`.
    fn tick(&self, prev: u64, now: u64) {
        for g in &self.groups {
            for (lo, hi) in window_residues(g.interval, prev, now) {
                let from = g.members.partition_point(|m| m.0 < lo);
                let to = g.members.partition_point(|m| m.0 < hi);
                for (_, entry) in &g.members[from..to.max(from)] {
                    send_tick(entry);
                }
            }
        }
    }
}

/// What the ticker's and the monitor's lists are built from: the registry's generation
/// and the kernels' ticking generation, read before the registry is scanned.
fn generations(system: &System) -> (u64, u64) {
    (
        system.registry.generation(),
        system.liveness.ticking_generation(),
    )
}

fn send_tick(entry: &KernelEntry) {
    let status = &entry.status;
    if status.state().is_up() && status.try_mark_tick_pending() {
        if entry.send(KernelMsg::Tick) {
            status.note_enqueued();
        } else {
            status.clear_tick_pending();
        }
    }
}

async fn ticker(system: Arc<System>) {
    let mut index = TickIndex::default();
    let mut prev = mono_ms();
    loop {
        // Wake at a fixed resolution, not at each kernel's due time: the ticks due within
        // one period go out together, so thousands of kernels cost a few wake-ups a second.
        let wait = resolution_ms(index.min_interval);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let now = mono_ms();
        index.refresh(&system);
        index.tick(prev, now);
        prev = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// With wake-ups no further apart than the interval (the ticker wakes at a
        /// quarter of the shortest one), a kernel gets exactly one tick per period
        /// boundary passed: none lost, none doubled.
        #[test]
        fn wake_ups_tick_once_per_period(
            interval in 1u64..5_000,
            phase_seed in any::<u64>(),
            steps in proptest::collection::vec(any::<u64>(), 1..300),
        ) {
            let phase = phase_seed % interval;
            let (mut prev, mut ticks) = (1_000u64, 0u64);
            let start = prev;
            for s in steps {
                let now = prev + 1 + s % interval;
                ticks += u64::from(tick_due(prev, now, interval, phase));
                prev = now;
            }
            let boundaries = (prev + phase) / interval - (start + phase) / interval;
            prop_assert_eq!(ticks, boundaries);
        }

        /// The index finds exactly the kernels [`tick_due`] says are due.
        #[test]
        fn the_residue_windows_select_exactly_the_due_kernels(
            interval in 1u64..2_000,
            prev in 0u64..1_000_000,
            len in 0u64..3_000,
            phase in any::<u64>(),
        ) {
            let (phase, now) = (phase % interval, prev + len);
            let r = due_residue(interval, phase);
            let selected = window_residues(interval, prev, now)
                .iter()
                .any(|&(lo, hi)| (lo..hi).contains(&r));
            prop_assert_eq!(selected, tick_due(prev, now, interval, phase));
        }
    }

    #[test]
    fn phases_spread_and_resolution_follows_the_shortest_interval() {
        let phases: HashSet<u64> = (0..100)
            .map(|i| tick_phase(&format!("k{i}"), 1000))
            .collect();
        assert!(phases.len() > 80, "{}", phases.len());
        assert_eq!(resolution_ms(1000), 100);
        assert_eq!(resolution_ms(40), 10);
        assert_eq!(resolution_ms(1), MIN_RESOLUTION_MS);
        assert_eq!(resolution_ms(u64::MAX), MAX_RESOLUTION_MS);
    }
}
