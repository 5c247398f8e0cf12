//! What the HTTP layer measures about itself: request counts by method, route and
//! status, latency (overall, and a histogram per route for `/metrics`), timeouts. The api_timeout and kpi_threshold triggers read these through
//! [`ApiStats::record`], the one place every request is accounted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PromHistogram;
use serde::Serialize;

use crate::telemetry::Histogram;
use crate::time::mono_ms;

/// Upper bounds (seconds) of the request-duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 14] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Request durations by route.
pub type Durations = Family<[(&'static str, String); 1], PromHistogram, fn() -> PromHistogram>;

fn duration_histogram() -> PromHistogram {
    PromHistogram::new(DURATION_BUCKETS)
}

/// Request accounting of one HTTP server.
#[derive(Debug)]
pub struct ApiStats {
    requests: AtomicU64,
    timeouts: AtomicU64,
    server_errors: AtomicU64,
    latency: Histogram,
    by_route: DashMap<(&'static str, String, u16), u64>,
    durations: Durations,
    added_latency: AddedLatency,
}

impl Default for ApiStats {
    fn default() -> Self {
        ApiStats {
            requests: AtomicU64::default(),
            timeouts: AtomicU64::default(),
            server_errors: AtomicU64::default(),
            latency: Histogram::default(),
            by_route: DashMap::default(),
            durations: Family::new_with_constructor(duration_histogram),
            added_latency: AddedLatency::default(),
        }
    }
}

/// A request method as a label value: the standard ones, `other` for any extension
/// method a client makes up.
fn method_label(method: &str) -> &'static str {
    [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ]
    .into_iter()
    .find(|m| *m == method)
    .unwrap_or("other")
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
            .entry((method_label(method), route.to_owned(), status))
            .or_insert(0) += 1;
        self.durations
            .get_or_create(&[("route", route.to_owned())])
            .observe(latency.as_secs_f64());
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

    /// The request-duration histograms by route.
    pub fn durations(&self) -> &Durations {
        &self.durations
    }

    /// Counts by (method, route, status), sorted.
    pub fn by_route(&self) -> BTreeMap<(&'static str, String, u16), u64> {
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
        s.record("BREW", "unmatched", 404, Duration::from_millis(1), false);
        let r = s.by_route();
        assert_eq!(r[&("GET", "/health".into(), 200)], 2);
        assert_eq!(
            r[&("other", "unmatched".into(), 404)],
            1,
            "made-up methods are one label"
        );
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
