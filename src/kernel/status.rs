//! The shared, lock-free status of one kernel: heartbeat, state and counters. It is
//! created once per kernel name and outlives every restart of the kernel's actor.
//!
//! Liveness has two sources. While the kernel handles a message it is *busy*: the actor
//! stamps when the handler started, and the handler may [`KernelStatus::beat`] during
//! long work. A kernel that [ticks](crate::kernel::Kernel::ticks) also beats at every
//! message it handles, so its heartbeat tells whether its ticks succeed. An idle kernel
//! that does not tick has no age at all: waiting on its mailbox, it cannot hang.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use super::spec::{Isolation, KernelSpec};
use crate::telemetry::Histogram;
use crate::time::mono_ms;

/// Lifecycle state of a kernel, as shown by introspection and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum KernelState {
    /// Being started.
    Starting = 0,
    /// Running and handling messages.
    Running = 1,
    /// Running, but its health check reports degraded (or it is shedding load).
    Degraded = 2,
    /// Down, waiting for a restart (backoff).
    Restarting = 3,
    /// Down for good: restart limit reached, or start failed.
    Failed = 4,
    /// Stopped on purpose (operator, playbook, shutdown) or a temporary child that exited.
    Stopped = 5,
}

impl KernelState {
    fn from_u8(v: u8) -> KernelState {
        match v {
            0 => KernelState::Starting,
            1 => KernelState::Running,
            2 => KernelState::Degraded,
            3 => KernelState::Restarting,
            4 => KernelState::Failed,
            _ => KernelState::Stopped,
        }
    }

    /// Whether the kernel is up (running or degraded).
    pub fn is_up(self) -> bool {
        matches!(self, KernelState::Running | KernelState::Degraded)
    }
}

/// The shared status of one kernel.
#[derive(Debug)]
pub struct KernelStatus {
    /// Its name.
    pub name: String,
    /// Whether it is critical.
    pub critical: bool,
    /// Its isolation.
    pub isolation: Isolation,
    /// Whether the user marked it `sandbox = true` (untrusted code).
    pub sandbox: bool,
    heartbeat_interval_ms: AtomicU64,
    heartbeat_timeout_ms: AtomicU64,
    last_beat_ms: AtomicU64,
    started_ms: AtomicU64,
    state: AtomicU8,
    messages: AtomicU64,
    enqueued: AtomicU64,
    restarts: AtomicU64,
    /// When it last went down for a restart (monotonic ms; 0: never).
    down_ms: AtomicU64,
    tick_pending: AtomicBool,
    unresponsive: AtomicBool,
    /// When the handler running now started (monotonic ms; 0: idle).
    busy_since_ms: AtomicU64,
    /// Whether the heartbeat monitor keeps this kernel in its deadline queue.
    watched: AtomicBool,
    /// Whether the kernel is ticked at its heartbeat interval.
    ticks: AtomicBool,
    last_reason: Mutex<Option<String>>,
    /// Time spent handling each message.
    pub handle_latency: Histogram,
}

/// A plain copy of a [`KernelStatus`], for APIs and logs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusSnapshot {
    /// Name.
    pub name: String,
    /// State.
    pub state: KernelState,
    /// Critical flag.
    pub critical: bool,
    /// Isolation.
    pub isolation: Isolation,
    /// Restarts since the tree started.
    pub restarts: u64,
    /// The reason of the last restart or failure.
    pub last_reason: Option<String>,
    /// Milliseconds since the kernel last proved alive (0 while idle, unless it ticks).
    pub heartbeat_age_ms: u64,
    /// Heartbeat timeout, milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Seconds since the current incarnation started.
    pub uptime_s: f64,
    /// Messages handled.
    pub messages: u64,
    /// Messages waiting in the mailbox (approximate).
    pub mailbox: u64,
    /// Median handling time, microseconds.
    pub handle_p50_us: f64,
    /// 99th percentile handling time, microseconds.
    pub handle_p99_us: f64,
}

impl KernelStatus {
    /// A fresh status for `spec`, in state `Starting`.
    pub fn new(spec: &KernelSpec) -> KernelStatus {
        let now = mono_ms();
        KernelStatus {
            name: spec.name.clone(),
            critical: spec.critical,
            isolation: spec.isolation,
            sandbox: spec.sandbox,
            heartbeat_interval_ms: AtomicU64::new(spec.heartbeat_interval.as_millis() as u64),
            heartbeat_timeout_ms: AtomicU64::new(spec.heartbeat_timeout.as_millis() as u64),
            last_beat_ms: AtomicU64::new(now),
            started_ms: AtomicU64::new(now),
            state: AtomicU8::new(KernelState::Starting as u8),
            messages: AtomicU64::new(0),
            enqueued: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            down_ms: AtomicU64::new(0),
            tick_pending: AtomicBool::new(false),
            unresponsive: AtomicBool::new(false),
            busy_since_ms: AtomicU64::new(0),
            watched: AtomicBool::new(false),
            ticks: AtomicBool::new(false),
            last_reason: Mutex::new(None),
            handle_latency: Histogram::default(),
        }
    }

    /// Stamps the heartbeat: one relaxed atomic store.
    #[inline]
    pub fn beat(&self) {
        self.last_beat_ms.store(mono_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the kernel last proved alive (see [`KernelStatus::heartbeat_age_at`]).
    pub fn heartbeat_age_ms(&self) -> u64 {
        self.heartbeat_age_at(mono_ms())
    }

    /// Milliseconds at `now` (a [`mono_ms`] reading) since the kernel last proved alive:
    /// for a kernel that ticks, since its last beat; otherwise, while it handles a
    /// message, since the handler started or last beat, whichever is later; 0 while it
    /// is idle.
    pub fn heartbeat_age_at(&self, now: u64) -> u64 {
        let beat = self.last_beat_ms.load(Ordering::Relaxed);
        if self.ticks() {
            return now.saturating_sub(beat);
        }
        match self.busy_since_ms.load(Ordering::SeqCst) {
            0 => 0,
            since => now.saturating_sub(since.max(beat)),
        }
    }

    /// Heartbeat interval in milliseconds.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.heartbeat_interval_ms.load(Ordering::Relaxed)
    }

    /// Heartbeat timeout in milliseconds.
    pub fn heartbeat_timeout_ms(&self) -> u64 {
        self.heartbeat_timeout_ms.load(Ordering::Relaxed)
    }

    /// Whether the kernel, up, has not proved alive for longer than its timeout: a
    /// handler runs past it without beating, or (a kernel that ticks) its ticks stopped
    /// succeeding.
    pub fn is_hung(&self) -> bool {
        self.is_hung_at(mono_ms())
    }

    /// [`KernelStatus::is_hung`] at `now` (a [`mono_ms`] reading).
    pub fn is_hung_at(&self, now: u64) -> bool {
        self.state().is_up() && self.heartbeat_age_at(now) > self.heartbeat_timeout_ms()
    }

    /// Whether the kernel is ticked at its heartbeat interval (set by its actor from
    /// [`crate::kernel::Kernel::ticks`]).
    #[inline]
    pub fn ticks(&self) -> bool {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Sets whether the kernel is ticked (its heartbeat age then counts between
    /// messages too); true if that changed, which the ticker and monitor must then
    /// learn ([`crate::kernel::Liveness::ticking_changed`]).
    pub fn set_ticks(&self, yes: bool) -> bool {
        self.ticks.swap(yes, Ordering::AcqRel) != yes
    }

    /// Marks a handler started at `now` (a [`mono_ms`] reading); true when the kernel
    /// was not watched by the heartbeat monitor, which the caller must then tell
    /// ([`crate::kernel::Liveness::push_busy`]). The store and the load are sequentially
    /// consistent, and so are the monitor's in [`KernelStatus::unwatch`]: of a handler
    /// starting while the monitor lets the kernel go, one of the two sees the other.
    #[inline]
    pub fn begin_handling(&self, now: u64) -> bool {
        self.busy_since_ms.store(now, Ordering::SeqCst);
        !self.watched.load(Ordering::SeqCst)
            && self
                .watched
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Marks the handler started at `started` done (unless a new incarnation has
    /// started one since).
    #[inline]
    pub fn end_handling(&self, started: u64) {
        let _ =
            self.busy_since_ms
                .compare_exchange(started, 0, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// When the handler running now started (a [`mono_ms`] reading), if one runs.
    pub fn busy_since_ms(&self) -> Option<u64> {
        match self.busy_since_ms.load(Ordering::SeqCst) {
            0 => None,
            at => Some(at),
        }
    }

    /// When the current handler's heartbeat timeout passes (its start or last beat,
    /// whichever is later, plus the timeout), if a handler runs.
    pub fn busy_deadline_ms(&self) -> Option<u64> {
        let beat = self.last_beat_ms.load(Ordering::Relaxed);
        self.busy_since_ms()
            .map(|since| since.max(beat) + self.heartbeat_timeout_ms())
    }

    /// For the heartbeat monitor, letting go of an idle kernel: clears the watched mark,
    /// unless a handler started meanwhile, in which case the monitor keeps watching
    /// (returns true). A handler starting after this registers the kernel again.
    pub fn unwatch(&self) -> bool {
        self.watched.store(false, Ordering::SeqCst);
        self.busy_since_ms.load(Ordering::SeqCst) != 0
            && self
                .watched
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// For the heartbeat monitor, dropping a kernel that is down: the next handler of a
    /// new incarnation registers it again.
    pub fn forget_watch(&self) {
        self.watched.store(false, Ordering::SeqCst);
    }

    /// The current state.
    pub fn state(&self) -> KernelState {
        KernelState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Sets the state.
    pub fn set_state(&self, s: KernelState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Marks a new incarnation started now (fresh heartbeat). Its state becomes
    /// Running once callers can reach it: the supervisor sets it after registering the
    /// new actor, [`KernelStatus::mark_running`] does both for a restart in place.
    pub fn mark_started(&self) {
        let now = mono_ms();
        self.started_ms.store(now, Ordering::Relaxed);
        self.last_beat_ms.store(now, Ordering::Relaxed);
        self.tick_pending.store(false, Ordering::Relaxed);
        self.unresponsive.store(false, Ordering::Relaxed);
        // A handler of the last incarnation that never returned is not this one's.
        self.busy_since_ms.store(0, Ordering::SeqCst);
    }

    /// Marks a new incarnation started now and Running (same actor, nothing to
    /// register: a restart in place).
    pub fn mark_running(&self) {
        self.mark_started();
        self.set_state(KernelState::Running);
    }

    /// Marks a heartbeat tick as sent; returns false if one is already waiting in the
    /// mailbox, so that a hung kernel's mailbox does not fill with ticks.
    #[inline]
    pub fn try_mark_tick_pending(&self) -> bool {
        !self.tick_pending.swap(true, Ordering::AcqRel)
    }

    /// Clears the pending-tick mark (the kernel's loop took the tick).
    #[inline]
    pub fn clear_tick_pending(&self) {
        self.tick_pending.store(false, Ordering::Release);
    }

    /// Records the outcome of the last tick: an unresponsive kernel (its probe failed) is
    /// not proven alive by other messages until a tick succeeds again.
    pub fn set_unresponsive(&self, yes: bool) {
        self.unresponsive.store(yes, Ordering::Relaxed);
    }

    /// Whether the last tick found the kernel unresponsive.
    pub fn is_unresponsive(&self) -> bool {
        self.unresponsive.load(Ordering::Relaxed)
    }

    /// Counts a restart with its reason, and notes that it went down now.
    pub fn record_restart(&self, reason: &str) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.down_ms.store(mono_ms().max(1), Ordering::Relaxed);
        *self.last_reason.lock() = Some(reason.to_owned());
    }

    /// Records a failure reason without counting a restart.
    pub fn set_reason(&self, reason: &str) {
        *self.last_reason.lock() = Some(reason.to_owned());
    }

    /// Milliseconds since it last went down for a restart (None: never restarted).
    /// A restart takes microseconds, so a poll of `state` alone would not see it.
    pub fn since_down_ms(&self) -> Option<u64> {
        match self.down_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(mono_ms().saturating_sub(at)),
        }
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The last restart or failure reason.
    pub fn last_reason(&self) -> Option<String> {
        self.last_reason.lock().clone()
    }

    /// Counts a message put in the mailbox.
    #[inline]
    pub fn note_enqueued(&self) {
        self.enqueued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message handled, with its handling time when it is a request or a
    /// control call (`None` for a heartbeat tick, which is not work). A kernel that
    /// ticks also beats (unless the last tick found it unresponsive); one that does not
    /// needs no beat between messages.
    #[inline]
    pub fn note_handled(&self, ns: Option<u64>) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        if let Some(ns) = ns {
            self.handle_latency.record_ns(ns);
        }
        if self.ticks() && !self.unresponsive.load(Ordering::Relaxed) {
            self.beat();
        }
    }

    /// Messages waiting in the mailbox (approximate: counts what went through the
    /// registry and [`crate::kernel::KernelContext::send_self`]).
    pub fn mailbox(&self) -> u64 {
        self.enqueued
            .load(Ordering::Relaxed)
            .saturating_sub(self.messages())
    }

    /// Messages handled.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// A plain copy for APIs and logs.
    pub fn snapshot(&self) -> StatusSnapshot {
        let messages = self.messages();
        let enqueued = self.enqueued.load(Ordering::Relaxed);
        StatusSnapshot {
            name: self.name.clone(),
            state: self.state(),
            critical: self.critical,
            isolation: self.isolation,
            restarts: self.restarts(),
            last_reason: self.last_reason(),
            heartbeat_age_ms: self.heartbeat_age_ms(),
            heartbeat_timeout_ms: self.heartbeat_timeout_ms(),
            uptime_s: mono_ms().saturating_sub(self.started_ms.load(Ordering::Relaxed)) as f64
                / 1000.0,
            messages,
            mailbox: enqueued.saturating_sub(messages),
            handle_p50_us: self.handle_latency.quantile_ns(0.5) as f64 / 1000.0,
            handle_p99_us: self.handle_latency.quantile_ns(0.99) as f64 / 1000.0,
        }
    }
}
