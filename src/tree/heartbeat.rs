//! Heartbeats of a tree: one ticker task and one monitor task for all its kernels.
//!
//! The ticker sends [`KernelMsg::Tick`] to every running kernel when its
//! `heartbeat_interval` is due. It keeps no timer per kernel: one queue ordered by due
//! time holds every kernel, and each wake-up takes only the kernels due, so the cost is
//! per tick sent, not per kernel per wake-up. A kernel is due at the multiples of its
//! interval shifted by a phase derived from its name, which spreads kernels started
//! together over the interval. The queue is rebuilt when the registry's generation
//! changes (a kernel registered or removed). At most one tick waits in a kernel's
//! mailbox, so a hung kernel's mailbox does not fill with ticks.
//!
//! The monitor looks every `check_interval` for kernels whose heartbeat is older than
//! their timeout ([`crate::kernel::KernelStatus::is_hung`]), publishes
//! `kernel.heartbeat.missed` once per hang and, with `auto_restart`, asks the kernel's
//! supervisor to restart it (reason `heartbeat_timeout`), from a task of its own so that
//! the scan never waits, with at most one restart in flight per kernel.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::registry::KernelEntry;
use super::system::System;
use crate::bus::Topic;
use crate::config::HeartbeatConfig;
use crate::kernel::KernelMsg;
use crate::time::mono_ms;

/// The ticker wakes at least this often...
const MAX_RESOLUTION_MS: u64 = 100;
/// ...or, with short intervals, a quarter of the shortest, but not more often than this.
const MIN_RESOLUTION_MS: u64 = 5;
/// How long a restart asked by the monitor may take before it is reported as failed.
const RESTART_WAIT: Duration = Duration::from_secs(30);

/// Payload of `kernel.heartbeat.missed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatMissed {
    /// The kernel.
    pub kernel: String,
    /// Age of its heartbeat when the monitor saw it, milliseconds.
    pub heartbeat_age_ms: u64,
    /// Its timeout, milliseconds.
    pub timeout_ms: u64,
}

/// When a kernel with this `interval` and `phase` (ms) is next due after `now`: the
/// first instant after `now` at which `t + phase` is a multiple of `interval`.
pub fn next_due(now_ms: u64, interval_ms: u64, phase_ms: u64) -> u64 {
    let interval = interval_ms.max(1);
    ((now_ms + phase_ms) / interval + 1) * interval - phase_ms
}

/// A kernel's phase within its interval, from its name (FNV-1a), so that kernels
/// started together do not all tick together.
pub fn tick_phase(name: &str, interval_ms: u64) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % interval_ms.max(1)
}

/// The longest the ticker sleeps, given the shortest interval: it wakes this often even
/// when nothing is due, to pick up kernels registered meanwhile.
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
        monitor: tokio::spawn(monitor(system, cfg)),
    }
}

/// The ticker's queue: every registered kernel, ordered by when it is next due.
#[derive(Default)]
struct TickQueue {
    generation: Option<u64>,
    entries: Vec<(Arc<KernelEntry>, u64)>,
    due: BinaryHeap<Reverse<(u64, usize)>>,
    min_interval: u64,
}

impl TickQueue {
    /// Rebuilds the queue from the registry if kernels were registered or removed.
    fn refresh(&mut self, system: &System, now: u64) {
        let generation = system.registry.generation();
        if self.generation == Some(generation) {
            return;
        }
        self.generation = Some(generation);
        self.entries.clear();
        self.due.clear();
        self.min_interval = u64::MAX;
        system.registry.for_each(|entry| {
            let interval = entry.status.heartbeat_interval_ms();
            let phase = tick_phase(&entry.status.name, interval);
            self.min_interval = self.min_interval.min(interval);
            self.due.push(Reverse((
                next_due(now, interval, phase),
                self.entries.len(),
            )));
            self.entries.push((entry.clone(), phase));
        });
    }

    /// Sends a tick to every kernel due by `now` and queues it again.
    fn tick(&mut self, now: u64) {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let Some((entry, phase)) = self.entries.get(i) else {
                continue;
            };
            let status = &entry.status;
            if status.state().is_up() && status.try_mark_tick_pending() {
                let sent = entry.actor().is_some_and(|a| {
                    status.note_enqueued();
                    a.send_message(KernelMsg::Tick).is_ok()
                });
                if !sent {
                    status.clear_tick_pending();
                }
            }
            let interval = status.heartbeat_interval_ms();
            self.due.push(Reverse((next_due(now, interval, *phase), i)));
        }
    }
}

async fn ticker(system: Arc<System>) {
    let mut queue = TickQueue::default();
    loop {
        let now = mono_ms();
        queue.refresh(&system, now);
        queue.tick(now);
        let next = queue.due.peek().map_or(u64::MAX, |r| r.0 .0);
        let wait = next
            .saturating_sub(now)
            .clamp(1, resolution_ms(queue.min_interval));
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

async fn monitor(system: Arc<System>, cfg: HeartbeatConfig) {
    // Kernels whose current hang was published; restarts asked, with when.
    let mut reported: HashSet<String> = HashSet::new();
    let mut attempted: HashMap<String, u64> = HashMap::new();
    let mut inflight: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(cfg.check_interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut hung = Vec::new();
        system.registry.for_each(|entry| {
            if entry.status.is_hung() {
                let s = &entry.status;
                hung.push((
                    s.name.clone(),
                    s.heartbeat_age_ms(),
                    s.heartbeat_timeout_ms(),
                ));
            }
        });
        let now = mono_ms();
        inflight.retain(|_, h| !h.is_finished());
        reported.retain(|n| hung.iter().any(|(h, _, _)| h == n));
        attempted.retain(|n, _| hung.iter().any(|(h, _, _)| h == n));
        for (name, age, timeout) in hung {
            if reported.insert(name.clone()) {
                tracing::warn!(kernel = %name, heartbeat_age_ms = age, timeout_ms = timeout, "heartbeat missed");
                let payload = HeartbeatMissed {
                    kernel: name.clone(),
                    heartbeat_age_ms: age,
                    timeout_ms: timeout,
                };
                system
                    .bus
                    .emit(Topic::KernelHeartbeatMissed, Some(&name), payload);
            }
            let retry_due = attempted
                .get(&name)
                .is_none_or(|&at| now.saturating_sub(at) >= timeout);
            if !cfg.auto_restart || inflight.contains_key(&name) || !retry_due {
                continue;
            }
            attempted.insert(name.clone(), now);
            let (sys, n) = (system.clone(), name.clone());
            let task = tokio::spawn(async move {
                match sys
                    .registry
                    .restart(&n, "heartbeat_timeout", RESTART_WAIT)
                    .await
                {
                    Ok(()) => tracing::info!(kernel = %n, "hung kernel restarted"),
                    Err(e) => {
                        tracing::warn!(kernel = %n, error = %e, "restart of hung kernel failed")
                    }
                }
            });
            inflight.insert(name, task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The next due time is after now, on the kernel's grid, within one interval.
        #[test]
        fn the_next_tick_is_on_the_grid_within_one_interval(
            now in 0u64..1_000_000_000,
            interval in 1u64..100_000,
            phase_seed in any::<u64>(),
        ) {
            let phase = phase_seed % interval;
            let t = next_due(now, interval, phase);
            prop_assert!(t > now && t - now <= interval);
            prop_assert_eq!((t + phase) % interval, 0);
        }

        /// Waking at arbitrary times no further apart than the interval, a kernel is
        /// ticked exactly once per grid point passed: none lost, none doubled.
        #[test]
        fn wake_ups_tick_once_per_grid_point(
            interval in 1u64..5_000,
            phase_seed in any::<u64>(),
            steps in proptest::collection::vec(any::<u64>(), 1..300),
        ) {
            let phase = phase_seed % interval;
            let start = 1_000u64;
            let (mut now, mut due, mut ticks) = (start, next_due(start, interval, phase), 0u64);
            for s in steps {
                now += 1 + s % interval;
                if due <= now {
                    ticks += 1;
                    due = next_due(now, interval, phase);
                }
            }
            let points = (now + phase) / interval - (start + phase) / interval;
            prop_assert_eq!(ticks, points);
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
