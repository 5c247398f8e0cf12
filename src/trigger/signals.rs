//! [`ApiSignals`]: what the HTTP server tells the API triggers about its requests
//! (counts, timeouts, latencies), recorded lock-free on the request path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::time::mono_ms;

/// Seconds of per-second counters kept; longer windows are cut to this.
pub const MAX_WINDOW_SECS: u64 = 300;
/// Latency samples kept (the most recent ones); a window's p95 is computed over the
/// samples of this ring that fall inside it.
pub const SAMPLES: usize = 8192;

/// Request counters and latency samples over a sliding window.
///
/// `record` costs two compare-and-swap loops on per-second counters and one atomic store
/// into a ring of samples; nothing locks. Counters are stamped with their second, so a
/// slot is reset by the first request of a new second without losing concurrent ones.
pub struct ApiSignals {
    requests: Box<[AtomicU64]>,
    timeouts: Box<[AtomicU64]>,
    samples: Box<[AtomicU64]>,
    next: AtomicUsize,
    total_requests: AtomicU64,
    total_timeouts: AtomicU64,
}

/// The figures of one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ApiWindow {
    /// Requests completed in the window.
    pub requests: u64,
    /// Of which timed out.
    pub timeouts: u64,
    /// Latency samples in the window (at most [`SAMPLES`]).
    pub samples: usize,
    /// 95th percentile latency in milliseconds, when there is any sample.
    pub p95_ms: Option<f64>,
}

impl Default for ApiSignals {
    fn default() -> Self {
        let slots = MAX_WINDOW_SECS as usize + 1;
        ApiSignals {
            requests: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            timeouts: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            samples: (0..SAMPLES).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicUsize::new(0),
            total_requests: AtomicU64::new(0),
            total_timeouts: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for ApiSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSignals")
            .field("total_requests", &self.total_requests())
            .field("total_timeouts", &self.total_timeouts())
            .finish_non_exhaustive()
    }
}

/// A counter word: the second it counts in the high 32 bits, the count in the low 32.
fn bump(slot: &AtomicU64, second: u64) {
    let stamp = second & 0xffff_ffff;
    let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
        Some(if w >> 32 == stamp {
            w.saturating_add(1)
        } else {
            (stamp << 32) | 1
        })
    });
}

fn count_in(slots: &[AtomicU64], from: u64, to: u64) -> u64 {
    slots
        .iter()
        .map(|s| s.load(Ordering::Acquire))
        .filter(|w| {
            let sec = w >> 32;
            sec >= (from & 0xffff_ffff) && sec <= (to & 0xffff_ffff)
        })
        .map(|w| w & 0xffff_ffff)
        .sum()
}

/// A sample word: monotonic ms in the high 40 bits, latency in ms (capped) in the low 24.
const LAT_BITS: u32 = 24;
const LAT_MAX: u64 = (1 << LAT_BITS) - 1;

/// The 95th percentile of `values` (nearest rank), or None when empty.
pub fn p95(values: &mut [u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((0.95 * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1] as f64)
}

impl ApiSignals {
    /// Records one completed request: how long it took and whether it timed out.
    pub fn record(&self, latency: Duration, timed_out: bool) {
        let now = mono_ms();
        let second = now / 1000;
        let slot = (second % self.requests.len() as u64) as usize;
        bump(&self.requests[slot], second);
        self.total_requests.fetch_add(1, Ordering::Relaxed);
        if timed_out {
            bump(&self.timeouts[slot], second);
            self.total_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        let ms = u64::try_from(latency.as_millis())
            .unwrap_or(u64::MAX)
            .min(LAT_MAX);
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.samples.len();
        self.samples[i].store((now << LAT_BITS) | ms, Ordering::Release);
    }

    /// The figures of the last `window` (whole seconds, at most [`MAX_WINDOW_SECS`],
    /// the current second included).
    pub fn window(&self, window: Duration) -> ApiWindow {
        let now = mono_ms();
        let secs = window.as_secs().clamp(1, MAX_WINDOW_SECS);
        let to = now / 1000;
        let from = (to + 1).saturating_sub(secs);
        let since_ms = now.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let mut lat: Vec<u64> = self
            .samples
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|w| *w != 0 && (w >> LAT_BITS) >= since_ms)
            .map(|w| w & LAT_MAX)
            .collect();
        ApiWindow {
            requests: count_in(&self.requests, from, to),
            timeouts: count_in(&self.timeouts, from, to),
            samples: lat.len(),
            p95_ms: p95(&mut lat),
        }
    }

    /// Requests recorded since start.
    pub fn total_requests(&self) -> u64 {
        self.total_requests.load(Ordering::Relaxed)
    }

    /// Timeouts recorded since start.
    pub fn total_timeouts(&self) -> u64 {
        self.total_timeouts.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test(start_paused = true)]
    async fn counts_and_p95_over_a_sliding_window() {
        let s = ApiSignals::default();
        for i in 1..=100u64 {
            s.record(Duration::from_millis(i * 10), i % 10 == 0);
        }
        let w = s.window(Duration::from_secs(60));
        assert_eq!((w.requests, w.timeouts, w.samples), (100, 10, 100));
        assert_eq!(w.p95_ms, Some(950.0));
        tokio::time::advance(Duration::from_secs(61)).await;
        let w = s.window(Duration::from_secs(60));
        assert_eq!(
            (w.requests, w.timeouts, w.samples, w.p95_ms),
            (0, 0, 0, None)
        );
        assert_eq!((s.total_requests(), s.total_timeouts()), (100, 10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_slot_forgets_its_old_second() {
        let s = ApiSignals::default();
        s.record(Duration::from_millis(1), true);
        tokio::time::advance(Duration::from_secs(MAX_WINDOW_SECS + 1)).await;
        s.record(Duration::from_millis(1), false);
        let w = s.window(Duration::from_secs(MAX_WINDOW_SECS));
        assert_eq!((w.requests, w.timeouts), (1, 0));
    }

    #[tokio::test]
    async fn concurrent_records_are_all_counted() {
        let s = std::sync::Arc::new(ApiSignals::default());
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.record(Duration::from_millis(2), false);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.join().expect("thread");
        }
        assert_eq!(s.window(Duration::from_secs(300)).requests, 4000);
    }

    proptest! {
        #[test]
        fn p95_is_an_element_with_95_percent_at_or_below(mut v in proptest::collection::vec(0u64..10_000, 1..300)) {
            let p = p95(&mut v.clone()).expect("non-empty") as u64;
            prop_assert!(v.contains(&p));
            v.sort_unstable();
            let at_or_below = v.iter().filter(|x| **x <= p).count();
            prop_assert!(at_or_below as f64 >= 0.95 * v.len() as f64);
            let below = v.iter().filter(|x| **x < p).count();
            prop_assert!((below as f64) < 0.95 * v.len() as f64);
        }
    }
}
