//! `GET /metrics`: the figures of the kernels' shared status, the bus counters, the
//! incidents, the bus tallies and the HTTP server's own accounting, in the Prometheus
//! text format ([`super::exposition`]).
//!
//! This module holds what the exposition is made of, the order of its families and the
//! server's own figures (HTTP accounting, emergency mode); `kernels` writes the kernels'
//! figures, `bus` the bus counters and tallies, and `incidents` the triggers, incidents,
//! playbook runs and trust scores.

use std::collections::BTreeMap;

use crate::bus::BusStats;
use crate::incident::{Incident, Summary};
use crate::kernel::StatusSnapshot;

use super::collector::Tallies;
use super::dashboard::TriggerView;
use super::exposition::Exposition;
use super::signals::ApiStats;

mod bus;
mod incidents;
mod kernels;

use bus::bus;
use incidents::{incidents, playbooks, triggers, trust};
use kernels::kernels;

/// What `/metrics` is made of.
pub struct Inputs<'a> {
    /// Every kernel.
    pub kernels: &'a [StatusSnapshot],
    /// Bus counters.
    pub bus: BusStats,
    /// The incidents kept in memory.
    pub incidents: &'a [Incident],
    /// The summary of every incident.
    pub summary: Summary,
    /// Trust scores.
    pub trust: BTreeMap<String, f64>,
    /// The trigger kernels with their counters.
    pub triggers: &'a [TriggerView],
    /// Bus tallies.
    pub tallies: &'a Tallies,
    /// HTTP accounting.
    pub api: &'a ApiStats,
    /// Emergency mode.
    pub emergency: bool,
}

/// Renders the exposition.
pub fn render(i: &Inputs<'_>) -> String {
    let mut e = Exposition::default();
    kernels(&mut e, i.kernels);
    bus(&mut e, i);
    incidents(&mut e, i);
    trust(&mut e, &i.trust);
    triggers(&mut e, i.triggers);
    playbooks(&mut e, i.tallies);
    http(&mut e, i.api);
    e.family(
        "grace_emergency_mode",
        "gauge",
        "1 while emergency mode is on.",
    );
    e.sample(
        "grace_emergency_mode",
        &[],
        f64::from(u8::from(i.emergency)),
    );
    e.finish()
}

fn http(e: &mut Exposition, api: &ApiStats) {
    e.family(
        "grace_http_requests_total",
        "counter",
        "HTTP requests by method, route and status.",
    );
    for ((m, r, s), n) in api.by_route() {
        e.sample(
            "grace_http_requests_total",
            &[("method", &m), ("route", &r), ("status", &s.to_string())],
            n as f64,
        );
    }
    e.family(
        "grace_http_timeouts_total",
        "counter",
        "HTTP requests that exceeded the request timeout.",
    );
    e.sample("grace_http_timeouts_total", &[], api.timeouts() as f64);
    e.family(
        "grace_http_request_duration_seconds",
        "gauge",
        "HTTP request latency quantiles.",
    );
    for q in ["0.5", "0.95", "0.99"] {
        let qv: f64 = q.parse().unwrap_or(0.5);
        e.sample(
            "grace_http_request_duration_seconds",
            &[("quantile", q)],
            api.latency().quantile_ns(qv) as f64 / 1e9,
        );
    }
}
