//! Exponential backoff between restarts of one child, as Akka's BackoffSupervisor does
//! it: `min(max, initial × multiplier^n) × (1 + jitter × u)` for the n-th consecutive
//! restart, with `u` uniform in [0, 1), and `n` reset once the child stayed up for
//! `reset_after`.

use std::time::Duration;

use tokio::time::Instant;

use super::spec::Backoff;

/// The delay before the `attempt`-th consecutive restart (0-based), with `unit` a
/// random sample in [0, 1) for the jitter.
///
/// The growth is capped at `max` before the jitter is applied (as in Akka), so that
/// children at the cap still spread out instead of restarting in step. Nonsensical
/// parameters are tamed rather than trusted: a multiplier below 1 (or not finite) counts
/// as 1, a negative or non-finite jitter as 0, and `unit` is clamped to [0, 1].
pub fn delay(b: &Backoff, attempt: u32, unit: f64) -> Duration {
    let multiplier = if b.multiplier.is_finite() && b.multiplier >= 1.0 {
        b.multiplier
    } else {
        1.0
    };
    let jitter = if b.jitter.is_finite() && b.jitter > 0.0 {
        b.jitter
    } else {
        0.0
    };
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let cap = b.max.as_secs_f64();
    let grown = b.initial.as_secs_f64() * multiplier.powi(attempt.min(i32::MAX as u32) as i32);
    let base = if grown.is_finite() {
        grown.min(cap)
    } else {
        cap
    };
    let secs = base * (1.0 + jitter * unit);
    Duration::try_from_secs_f64(secs).unwrap_or(b.max)
}

/// The backoff bookkeeping of one child.
#[derive(Debug, Clone, Default)]
pub struct BackoffState {
    attempt: u32,
    up_since: Option<Instant>,
}

impl BackoffState {
    /// Notes that the child (re)started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The child went down at `now`: returns how long to wait before restarting it, and
    /// counts the attempt. A child that had stayed up for `reset_after` starts over at
    /// the initial delay.
    pub fn next(&mut self, b: &Backoff, now: Instant, unit: f64) -> Duration {
        if let Some(up) = self.up_since.take() {
            if now.saturating_duration_since(up) >= b.reset_after {
                self.attempt = 0;
            }
        }
        let d = delay(b, self.attempt, unit);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// Consecutive attempts counted so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(initial_ms: u64, max_ms: u64, multiplier: f64, jitter: f64) -> Backoff {
        Backoff {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            multiplier,
            jitter,
            reset_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = b(100, 1000, 2.0, 0.0);
        let got: Vec<u64> = (0..6)
            .map(|n| delay(&b, n, 0.5).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_adds_up_to_its_fraction() {
        let b = b(100, 1000, 2.0, 0.5);
        assert_eq!(delay(&b, 0, 0.0), Duration::from_millis(100));
        assert_eq!(delay(&b, 0, 1.0), Duration::from_millis(150));
        assert_eq!(delay(&b, 10, 1.0), Duration::from_millis(1500));
    }

    #[test]
    fn resets_after_a_quiet_period() {
        let b = b(100, 10_000, 2.0, 0.0);
        let t0 = Instant::from_std(std::time::Instant::now());
        let mut s = BackoffState::default();
        s.started(t0);
        assert_eq!(s.next(&b, t0, 0.0), Duration::from_millis(100));
        s.started(t0);
        assert_eq!(
            s.next(&b, t0 + Duration::from_secs(1), 0.0),
            Duration::from_millis(200)
        );
        s.started(t0 + Duration::from_secs(1));
        assert_eq!(
            s.next(&b, t0 + Duration::from_secs(11), 0.0),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn nonsense_parameters_do_not_panic() {
        let mut weird = b(100, 1000, f64::NAN, f64::INFINITY);
        assert_eq!(
            delay(&weird, u32::MAX, f64::NAN),
            Duration::from_millis(100)
        );
        weird.multiplier = f64::MAX;
        assert_eq!(delay(&weird, u32::MAX, 0.3), Duration::from_millis(1000));
        weird.max = Duration::MAX;
        assert!(delay(&weird, u32::MAX, 0.3) > Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds_and_grow(
            initial in 0u64..10_000,
            max in 0u64..100_000,
            multiplier in 0.0f64..4.0,
            jitter in 0.0f64..1.0,
            n in 0u32..64,
            u in 0.0f64..1.0,
        ) {
            let bo = b(initial, max, multiplier, jitter);
            let d = delay(&bo, n, u);
            let floor = delay(&bo, n, 0.0);
            prop_assert!(d >= floor);
            prop_assert!(floor <= Duration::from_millis(max));
            prop_assert!(d.as_secs_f64() <= (max as f64 / 1000.0) * (1.0 + jitter) + 1e-9);
            prop_assert!(delay(&bo, n + 1, 0.0) >= floor, "not monotone in the attempt");
        }
    }
}
