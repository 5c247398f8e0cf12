//! Restart intensity: at most `max` restarts within any sliding window, kept as a ring of
//! the last `max` restart times so that each restart costs O(1).
//!
//! The same window serves the supervisor's intensity (past it, the supervisor fails) and
//! a child's attempt limit (past it, the child is left down).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The last `max` restart times within a sliding window.
///
/// Only the most recent `max` times matter: a new restart is past the limit exactly when
/// the oldest of them is still inside the window. The ring grows up to `max` entries on
/// demand, so a generous limit costs nothing until it is used.
#[derive(Debug, Clone)]
pub struct RestartWindow {
    max: u32,
    window: Duration,
    ring: VecDeque<Instant>,
}

impl RestartWindow {
    /// A window allowing `max` restarts within `window`.
    pub fn new(max: u32, window: Duration) -> RestartWindow {
        RestartWindow {
            max,
            window,
            ring: VecDeque::new(),
        }
    }

    /// Records a restart at `now` if it is within the limit and returns true; returns
    /// false (recording nothing) when it would be one restart too many. `now` must not
    /// go backwards between calls.
    pub fn try_record(&mut self, now: Instant) -> bool {
        if self.max == 0 {
            return false;
        }
        if self.ring.len() as u64 >= u64::from(self.max) {
            let oldest = self.ring.front().copied().unwrap_or(now);
            if now.saturating_duration_since(oldest) < self.window {
                return false;
            }
            self.ring.pop_front();
        }
        self.ring.push_back(now);
        true
    }

    /// Restarts recorded within the window ending at `now`.
    pub fn count(&self, now: Instant) -> usize {
        self.ring
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.window)
            .count()
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base() -> Instant {
        Instant::from_std(std::time::Instant::now())
    }

    #[test]
    fn allows_max_restarts_then_refuses_within_the_window() {
        let t0 = base();
        let mut w = RestartWindow::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert!(w.try_record(t0 + Duration::from_secs(i)));
        }
        assert!(!w.try_record(t0 + Duration::from_secs(5)));
        assert_eq!(w.count(t0 + Duration::from_secs(5)), 3);
    }

    #[test]
    fn the_window_slides() {
        let t0 = base();
        let mut w = RestartWindow::new(2, Duration::from_secs(10));
        assert!(w.try_record(t0));
        assert!(w.try_record(t0 + Duration::from_secs(9)));
        assert!(!w.try_record(t0 + Duration::from_millis(9_999)));
        // The first restart leaves the window at t0 + 10 s.
        assert!(w.try_record(t0 + Duration::from_secs(10)));
        assert!(!w.try_record(t0 + Duration::from_secs(11)));
    }

    #[test]
    fn zero_allows_nothing() {
        let mut w = RestartWindow::new(0, Duration::from_secs(1));
        assert!(!w.try_record(base()));
    }

    #[test]
    fn a_huge_limit_allocates_only_what_is_used() {
        let mut w = RestartWindow::new(u32::MAX, Duration::from_secs(1));
        assert!(w.try_record(base()));
        assert!(w.ring.capacity() < 1024);
    }

    proptest! {
        /// The ring agrees with the naive definition: a restart is allowed when fewer than
        /// `max` allowed restarts lie within the window before it.
        #[test]
        fn agrees_with_the_naive_model(
            max in 0u32..6,
            window_ms in 1u64..200,
            gaps in prop::collection::vec(0u64..120, 1..60),
        ) {
            let window = Duration::from_millis(window_ms);
            let mut w = RestartWindow::new(max, window);
            let mut accepted: Vec<Instant> = Vec::new();
            let mut now = base();
            for g in gaps {
                now += Duration::from_millis(g);
                let within = accepted.iter().filter(|t| now.duration_since(**t) < window).count();
                let expected = within < max as usize;
                prop_assert_eq!(w.try_record(now), expected);
                if expected {
                    accepted.push(now);
                }
                prop_assert!(w.ring.len() <= max as usize);
            }
        }
    }
}
