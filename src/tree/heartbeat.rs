//! Heartbeats of a tree: one ticker task and one monitor task for all its kernels.
//!
//! The ticker sends [`KernelMsg::Tick`] to every running kernel when its
//! `heartbeat_interval` is due. It keeps no timer and no state per kernel: each scan
//! asks, for every kernel, whether a multiple of its interval (shifted by a phase derived
//! from its name, which spreads kernels over the interval) fell since the previous scan.
//! At most one tick waits in a kernel's mailbox, so a hung kernel's mailbox does not
//! fill with ticks.
//!
//! The monitor looks every `check_interval` for kernels whose heartbeat is older than
//! their timeout ([`crate::kernel::KernelStatus::is_hung`]), publishes
//! `kernel.heartbeat.missed` once per hang and, with `auto_restart`, asks the kernel's
//! supervisor to restart it (reason `heartbeat_timeout`), from a task of its own so that
//! the scan never waits, with at most one restart in flight per kernel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::system::System;
use crate::bus::Topic;
use crate::config::HeartbeatConfig;
use crate::kernel::KernelMsg;
use crate::time::mono_ms;

/// The ticker scans at least this often...
const MAX_RESOLUTION_MS: u64 = 100;
/// ...and at most this often.
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

/// Whether a kernel with this `interval` and `phase` (ms) is due a tick in the scan
/// window `(prev, now]`: whether a multiple of the interval, shifted by the phase, fell
/// in it.
pub fn tick_due(prev_ms: u64, now_ms: u64, interval_ms: u64, phase_ms: u64) -> bool {
    interval_ms > 0 && (now_ms + phase_ms) / interval_ms > (prev_ms + phase_ms) / interval_ms
}

/// A kernel's phase within its interval, from its name (FNV-1a), so that kernels
/// started together do not all tick together.
pub fn tick_phase(name: &str, interval_ms: u64) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % interval_ms.max(1)
}

/// How long the ticker sleeps between scans, given the shortest interval it saw.
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

async fn ticker(system: Arc<System>) {
    let mut prev = mono_ms();
    let mut resolution = MAX_RESOLUTION_MS;
    loop {
        tokio::time::sleep(Duration::from_millis(resolution)).await;
        let now = mono_ms();
        let mut min_interval = u64::MAX;
        system.registry.for_each(|entry| {
            let status = &entry.status;
            let interval = status.heartbeat_interval_ms();
            min_interval = min_interval.min(interval);
            if !status.state().is_up()
                || !tick_due(prev, now, interval, tick_phase(&status.name, interval))
                || !status.try_mark_tick_pending()
            {
                return;
            }
            let sent = entry.actor().is_some_and(|a| {
                status.note_enqueued();
                a.send_message(KernelMsg::Tick).is_ok()
            });
            if !sent {
                status.clear_tick_pending();
            }
        });
        prev = now;
        resolution = resolution_ms(min_interval);
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
        /// With scans no further apart than the interval (the ticker scans at a quarter
        /// of the shortest one), a kernel gets exactly one tick per boundary crossed:
        /// one per period, none lost, none doubled.
        #[test]
        fn scans_shorter_than_the_interval_tick_once_per_period(
            interval in 1u64..5_000,
            phase_seed in any::<u64>(),
            steps in proptest::collection::vec(any::<u64>(), 1..400),
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
            let periods = (prev - start) / interval;
            prop_assert!(boundaries == periods || boundaries == periods + 1);
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
