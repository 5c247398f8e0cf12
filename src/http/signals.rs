//! What the HTTP layer measures about itself: request counts by route and status,
//! latency, timeouts. The api_timeout and kpi_threshold triggers read these through
//! [`ApiStats::record`], the one place every request is accounted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

use crate::telemetry::Histogram;
use crate::time::mono_ms;

/// Request accounting of one HTTP server.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    timeouts: AtomicU64,
    server_errors: AtomicU64,
    latency: Histogram,
    by_route: DashMap<(String, String, u16), u64>,
    added_latency: AddedLatency,
}

/// A plain copy of [`ApiStats`] for the dashboard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiSummary {
    /// Requests answered.
    pub requests: u64,
    /// Requests that exceeded the request timeout.
    pub timeouts: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Median latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub latency_p95_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub latency_p99_ms: f64,
    /// Latency the chaos harness currently adds to API answers, milliseconds.
    pub added_latency_ms: u64,
}

impl ApiStats {
    /// Accounts one answered request.
    pub fn record(
        &self,
        method: &str,
        route: &str,
        status: u16,
        latency: Duration,
        timed_out: bool,
    ) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if timed_out {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record_ns(latency.as_nanos() as u64);
        *self
            .by_route
            .entry((method.to_owned(), route.to_owned(), status))
            .or_insert(0) += 1;
    }

    /// Requests answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that timed out.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// The latency histogram.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Counts by (method, route, status), sorted.
    pub fn by_route(&self) -> BTreeMap<(String, String, u16), u64> {
        self.by_route
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect()
    }

    /// The injected latency.
    pub fn added_latency(&self) -> &AddedLatency {
        &self.added_latency
    }

    /// A plain copy.
    pub fn summary(&self) -> ApiSummary {
        let q = |q| self.latency.quantile_ns(q) as f64 / 1e6;
        ApiSummary {
            requests: self.requests(),
            timeouts: self.timeouts(),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            latency_p50_ms: q(0.5),
            latency_p95_ms: q(0.95),
            latency_p99_ms: q(0.99),
            added_latency_ms: self
                .added_latency
                .current()
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

/// Latency added to API answers by the chaos harness, until a deadline.
#[derive(Debug, Default)]
pub struct AddedLatency {
    ms: AtomicU64,
    until_ms: AtomicU64,
}

impl AddedLatency {
    /// Adds `delay` to every API answer for `duration` from now (zero delay: stop).
    pub fn set(&self, delay: Duration, duration: Duration) {
        self.ms.store(delay.as_millis() as u64, Ordering::Relaxed);
        self.until_ms.store(
            mono_ms().saturating_add(duration.as_millis() as u64),
            Ordering::Relaxed,
        );
    }

    /// The delay to add now, if any.
    pub fn current(&self) -> Option<Duration> {
        let ms = self.ms.load(Ordering::Relaxed);
        (ms > 0 && mono_ms() < self.until_ms.load(Ordering::Relaxed))
            .then(|| Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_counts_timeouts_and_routes() {
        let s = ApiStats::default();
        s.record("GET", "/health", 200, Duration::from_millis(2), false);
        s.record("GET", "/health", 200, Duration::from_millis(4), false);
        s.record("POST", "/x", 504, Duration::from_secs(10), true);
        let sum = s.summary();
        assert_eq!((sum.requests, sum.timeouts, sum.server_errors), (3, 1, 1));
        assert!(sum.latency_p99_ms >= 9000.0, "{sum:?}");
        let r = s.by_route();
        assert_eq!(r[&("GET".into(), "/health".into(), 200)], 2);
    }

    #[test]
    fn added_latency_expires() {
        let a = AddedLatency::default();
        assert_eq!(a.current(), None);
        a.set(Duration::from_millis(50), Duration::from_secs(60));
        assert_eq!(a.current(), Some(Duration::from_millis(50)));
        a.set(Duration::from_millis(50), Duration::ZERO);
        assert_eq!(a.current(), None);
    }
}
