//! A lock-free latency histogram: log-linear buckets of atomics, cheap enough to record
//! every message a kernel handles, precise to about 6% for quantiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const SUB: usize = 16; // linear sub-buckets per power of two
const POWERS: usize = 40; // up to 2^40 ns (~18 minutes)
const BUCKETS: usize = SUB * POWERS;

/// Records durations in nanoseconds; reports count, sum, quantiles and the counts at or
/// below given bounds (a Prometheus histogram's buckets). The buckets (5 KiB)
/// are allocated on the first record, so a kernel that never handles a request (only
/// heartbeat ticks) costs a pointer, not a table.
#[derive(Default)]
pub struct Histogram {
    buckets: OnceLock<Box<[AtomicU64]>>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .finish()
    }
}

fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros() as usize; // >= 4
    let shift = power - 4; // SUB = 2^4
    let sub = ((ns >> shift) as usize) & (SUB - 1);
    ((power - 3) * SUB + sub).min(BUCKETS - 1)
}

fn lower_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let power = i / SUB + 3;
    let sub = (i % SUB) as u64;
    (1u64 << power) + (sub << (power - 4))
}

impl Histogram {
    /// Records one duration.
    pub fn record_ns(&self, ns: u64) {
        let buckets = self
            .buckets
            .get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        buckets[index(ns)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Sum of the recorded values, nanoseconds.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns.load(Ordering::Relaxed)
    }

    /// How many recorded values fall in each of the ranges that `bounds_ns` (ascending)
    /// close: the first element counts the values up to `bounds_ns[0]`, each next one those
    /// above the previous bound up to its own, and one more element those above the last
    /// bound. A value counts below a bound only when its whole internal bucket does, so
    /// the split is exact to the histogram's resolution (about 6%).
    pub fn split_ns(&self, bounds_ns: &[u64]) -> Vec<u64> {
        let mut out = vec![0; bounds_ns.len() + 1];
        let Some(buckets) = self.buckets.get() else {
            return out;
        };
        let mut slot = 0;
        for (i, b) in buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            // The largest value bucket i holds.
            let top = if i + 1 < BUCKETS {
                lower_bound(i + 1) - 1
            } else {
                u64::MAX
            };
            while slot < bounds_ns.len() && top > bounds_ns[slot] {
                slot += 1;
            }
            out[slot] += n;
        }
        out
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0..=1) in nanoseconds, or 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.count();
        let Some(buckets) = self.buckets.get().filter(|_| total > 0) else {
            return 0;
        };
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return lower_bound(i);
            }
        }
        lower_bound(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bucket_bounds_bracket_the_value(ns in 0u64..(1 << 39)) {
            let i = index(ns);
            prop_assert!(lower_bound(i) <= ns);
            if i + 1 < BUCKETS {
                prop_assert!(ns < lower_bound(i + 1));
            }
        }
    }

    #[test]
    fn an_empty_histogram_allocates_nothing_and_reports_zero() {
        let h = Histogram::default();
        assert_eq!(h.quantile_ns(0.5), 0);
        assert!(h.buckets.get().is_none());
        h.record_ns(7);
        assert_eq!(h.quantile_ns(0.5), 7);
    }

    #[test]
    fn splits_by_bounds_and_sums() {
        let h = Histogram::default();
        for ns in [5, 900, 1_000, 50_000, 2_000_000_000] {
            h.record_ns(ns);
        }
        // 1 000 ns shares its internal bucket [992, 1024) with values above the bound.
        assert_eq!(h.split_ns(&[1_000, 100_000]), vec![2, 2, 1]);
        assert_eq!(h.split_ns(&[1_023, 100_000]), vec![3, 1, 1]);
        assert_eq!(h.sum_ns(), 2_000_051_905);
        assert_eq!(Histogram::default().split_ns(&[1]), vec![0, 0]);
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let h = Histogram::default();
        for v in 1..=1000u64 {
            h.record_ns(v * 1000);
        }
        let p50 = h.quantile_ns(0.5) as f64;
        let p99 = h.quantile_ns(0.99) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.07, "p50 {p50}");
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.07, "p99 {p99}");
    }
}
