//! Restart in place: what a kernel that repairs its own panic needs of its supervisor.
//!
//! The kernel checks the supervisor's limits itself, at the moment of the restart, and
//! only then restarts: a crash loop is bounded by intensity and the attempt limit just as
//! promptly as a respawn is, and no message to the supervisor (which would wake it, and
//! often a second worker thread, in the middle of the repair) is needed. Past either
//! limit the kernel does not repair itself: it fails, and the supervisor, finding the
//! same limit exceeded, leaves it down or fails in turn.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::events::{self, RestartEventRef};
use super::handle::Shared;
use super::intensity::RestartWindow;
use crate::bus::{Bus, Topic};

/// A [`RestartWindow`] shared by a supervisor and its kernels that restart in place.
#[derive(Debug, Clone)]
pub(crate) struct SharedWindow(Arc<Mutex<RestartWindow>>);

impl SharedWindow {
    pub(crate) fn new(max: u32, window: Duration) -> SharedWindow {
        SharedWindow(Arc::new(Mutex::new(RestartWindow::new(max, window))))
    }

    /// See [`RestartWindow::try_record`].
    pub(crate) fn try_record(&self, now: Instant) -> bool {
        self.lock().try_record(now)
    }

    /// The limit and the window.
    pub(crate) fn limits(&self) -> (u32, Duration) {
        let w = self.lock();
        (w.max(), w.window())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RestartWindow> {
        // The window is consistent after any panic: each operation is a single update.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Given to a kernel whose supervisor lets it restart in place.
pub(crate) struct InPlace {
    /// The supervisor's intensity window.
    pub(crate) intensity: SharedWindow,
    /// The child's attempt limit, if it has one.
    pub(crate) attempts: Option<SharedWindow>,
    /// The supervisor's counters (its restart count).
    pub(crate) shared: Arc<Shared>,
    /// The supervisor's name, for the restart events.
    pub(crate) supervisor: Arc<str>,
}

impl InPlace {
    /// Counts a restart at `now` against the attempt limit and intensity; false when it
    /// is past either, and the kernel must fail instead of repairing itself.
    pub(crate) fn admit(&self, now: Instant) -> bool {
        let admitted = self.attempts.as_ref().is_none_or(|w| w.try_record(now))
            && self.intensity.try_record(now);
        if admitted {
            self.shared.count_restart();
        }
        admitted
    }

    /// Publishes a restart in place (both restart events) and logs it: the same
    /// record a respawn leaves.
    pub(crate) fn publish(&self, bus: &Bus, kernel: &str, reason: &str, attempt: u64) {
        let ev = RestartEventRef {
            kernel,
            supervisor: &self.supervisor,
            reason,
            attempt,
            latency_us: None,
            in_place: true,
            error: None,
        };
        events::restart(bus, Topic::KernelRestartInitiated, &ev);
        events::restart(bus, Topic::KernelRestartSuccess, &ev);
        events::log_restart(&ev, true);
    }
}
