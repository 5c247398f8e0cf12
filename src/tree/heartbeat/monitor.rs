//! The heartbeat monitor: finds hung kernels at a cost that follows the work in
//! progress, not the number of kernels.
//!
//! A kernel is hung when, up, it has not proved alive for longer than its heartbeat
//! timeout ([`KernelStatus::is_hung`]): a handler runs past the timeout without beating,
//! or, for a kernel that ticks, its ticks stopped succeeding.
//!
//! Busy kernels: a kernel that starts a handler while the monitor does not watch it
//! hands itself over ([`crate::kernel::Liveness`]). The monitor keeps the kernels it
//! watches in a queue ordered by deadline (the current handler's start or last beat plus
//! the timeout) and, every `check_interval`, looks only at those whose deadline passed:
//! one still busy past it is hung; one busy with a later handler is queued again at that
//! handler's deadline; one that handled messages since it was queued is queued again one
//! timeout later (so a kernel that handles messages steadily hands itself over once, not
//! per message); one idle since is let go. An idle kernel costs nothing.
//!
//! Ticking kernels: the monitor checks the heartbeat age of each kernel that ticks at
//! every check, as it already pays for its ticks.
//!
//! A hung kernel is published as `kernel.heartbeat.missed` once per hang and, with
//! `auto_restart`, its supervisor is asked to restart it (reason `heartbeat_timeout`),
//! from a task of its own so that the checks never wait, with at most one restart in
//! flight per kernel and a retry each timeout while it stays hung.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{generations, HeartbeatMissed};
use crate::bus::Topic;
use crate::config::HeartbeatConfig;
use crate::kernel::{KernelState, KernelStatus};
use crate::time::mono_ms;
use crate::tree::System;

/// How long a restart asked by the monitor may take before it is reported as failed.
const RESTART_WAIT: Duration = Duration::from_secs(30);

/// A watched kernel, due for a look at `at` (a [`mono_ms`] reading).
struct Armed {
    at: u64,
    /// Its handled-message count when queued: a change means it was active since.
    seen: u64,
    status: Arc<KernelStatus>,
}

impl PartialEq for Armed {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Armed {}

impl PartialOrd for Armed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Armed {
    /// Earliest deadline first (the heap is a max-heap).
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// A kernel found hung, until it is no longer.
struct Hung {
    status: Arc<KernelStatus>,
    /// Whether it came from the deadline queue (it goes back there once not hung).
    watched: bool,
    /// Whether `kernel.heartbeat.missed` went out for this hang.
    published: bool,
    /// When a restart was last asked.
    attempted: Option<u64>,
    inflight: Option<JoinHandle<()>>,
}

/// The monitor's state.
struct Monitor {
    system: Arc<System>,
    cfg: HeartbeatConfig,
    queue: BinaryHeap<Armed>,
    incoming: Vec<Arc<KernelStatus>>,
    ticking: Vec<Arc<KernelStatus>>,
    generation: Option<(u64, u64)>,
    hung: HashMap<String, Hung>,
}

/// Runs the monitor of the tree over `system` until aborted.
pub(super) async fn run(system: Arc<System>, cfg: HeartbeatConfig) {
    let mut every = tokio::time::interval(cfg.check_interval.max(Duration::from_millis(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut m = Monitor {
        system,
        cfg,
        queue: BinaryHeap::new(),
        incoming: Vec::new(),
        ticking: Vec::new(),
        generation: None,
        hung: HashMap::new(),
    };
    loop {
        every.tick().await;
        m.check(mono_ms());
    }
}

impl Monitor {
    fn check(&mut self, now: u64) {
        let mut incoming = std::mem::take(&mut self.incoming);
        self.system.liveness.drain_busy_into(&mut incoming);
        for status in incoming.drain(..) {
            let at = status
                .busy_deadline_ms()
                .unwrap_or_else(|| now + status.heartbeat_timeout_ms());
            let seen = status.messages();
            self.queue.push(Armed { at, seen, status });
        }
        self.incoming = incoming;
        while self.queue.peek().is_some_and(|a| a.at <= now) {
            if let Some(a) = self.queue.pop() {
                self.expire(a, now);
            }
        }
        self.refresh_ticking();
        for status in &self.ticking {
            if status.is_hung_at(now) && !self.hung.contains_key(&status.name) {
                let status = status.clone();
                self.hung
                    .insert(status.name.clone(), Hung::new(status, false));
            }
        }
        self.settle(now);
    }

    /// A watched kernel whose deadline passed.
    fn expire(&mut self, a: Armed, now: u64) {
        let status = a.status;
        if matches!(status.state(), KernelState::Stopped | KernelState::Failed) {
            status.forget_watch();
            return;
        }
        if status.is_hung_at(now) {
            match self.hung.get_mut(&status.name) {
                Some(h) => h.watched = true,
                None => {
                    self.hung
                        .insert(status.name.clone(), Hung::new(status, true));
                }
            }
            return;
        }
        self.rearm(status, a.seen, now);
    }

    /// Queues `status` again, or lets it go if it stayed idle since `seen`.
    fn rearm(&mut self, status: Arc<KernelStatus>, seen: u64, now: u64) {
        let timeout = status.heartbeat_timeout_ms();
        let messages = status.messages();
        let at = match status.busy_deadline_ms() {
            Some(at) => at,
            None if messages != seen => now + timeout,
            None if status.unwatch() => status.busy_deadline_ms().unwrap_or(now + timeout),
            None => return,
        };
        self.queue.push(Armed {
            at: at.max(now + 1),
            seen: messages,
            status,
        });
    }

    /// Rebuilds the list of ticking kernels when the registry or the ticking set changed.
    fn refresh_ticking(&mut self) {
        let generation = generations(&self.system);
        if self.generation == Some(generation) {
            return;
        }
        self.generation = Some(generation);
        self.ticking.clear();
        let ticking = &mut self.ticking;
        self.system.registry.for_each(|e| {
            if e.status.ticks() {
                ticking.push(e.status.clone());
            }
        });
    }

    /// Publishes new hangs, asks for restarts, and lets go of kernels no longer hung.
    fn settle(&mut self, now: u64) {
        let mut recovered = Vec::new();
        self.hung.retain(|_, h| {
            let still = h.status.is_hung_at(now);
            if !still && h.watched {
                recovered.push(h.status.clone());
            }
            still
        });
        for status in recovered {
            self.rearm(status, u64::MAX, now);
        }
        for (name, h) in &mut self.hung {
            let timeout = h.status.heartbeat_timeout_ms();
            if !h.published {
                h.published = true;
                publish(&self.system, name, &h.status, now);
            }
            if h.inflight.as_ref().is_some_and(JoinHandle::is_finished) {
                h.inflight = None;
            }
            let retry_due = h
                .attempted
                .is_none_or(|at| now.saturating_sub(at) >= timeout);
            if !self.cfg.auto_restart || h.inflight.is_some() || !retry_due {
                continue;
            }
            h.attempted = Some(now);
            h.inflight = Some(restart(&self.system, name));
        }
    }
}

impl Hung {
    fn new(status: Arc<KernelStatus>, watched: bool) -> Hung {
        Hung {
            status,
            watched,
            published: false,
            attempted: None,
            inflight: None,
        }
    }
}

impl Drop for Monitor {
    /// A stopped monitor lets go of what it watched: the next handler of each kernel
    /// hands it to a new monitor.
    fn drop(&mut self) {
        for a in self.queue.drain() {
            a.status.forget_watch();
        }
        for h in self.hung.values().filter(|h| h.watched) {
            h.status.forget_watch();
        }
    }
}

fn publish(system: &System, name: &str, status: &KernelStatus, now: u64) {
    let (age, timeout) = (status.heartbeat_age_at(now), status.heartbeat_timeout_ms());
    // Logged as its bus event, kernel.heartbeat.missed.
    tracing::debug!(kernel = %name, heartbeat_age_ms = age, timeout_ms = timeout, "heartbeat missed");
    let payload = HeartbeatMissed {
        kernel: name.to_owned(),
        heartbeat_age_ms: age,
        timeout_ms: timeout,
        restarts: status.restarts(),
    };
    system
        .bus
        .emit(Topic::KernelHeartbeatMissed, Some(name), payload);
}

fn restart(system: &Arc<System>, name: &str) -> JoinHandle<()> {
    let (sys, n) = (system.clone(), name.to_owned());
    tokio::spawn(async move {
        match sys
            .registry
            .restart(&n, "heartbeat_timeout", RESTART_WAIT)
            .await
        {
            Ok(()) => tracing::info!(kernel = %n, "hung kernel restarted"),
            Err(e) => tracing::warn!(kernel = %n, error = %e, "restart of hung kernel failed"),
        }
    })
}
