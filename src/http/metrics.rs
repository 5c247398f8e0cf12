//! `GET /metrics`: the figures of the kernels' shared status, the bus counters, the
//! incidents, the bus tallies and the HTTP server's own accounting, in the Prometheus
//! text format ([`super::exposition`]).

use std::collections::BTreeMap;

use crate::bus::BusStats;
use crate::incident::{Incident, IncidentStatus, Summary};
use crate::kernel::StatusSnapshot;

use super::collector::{Buckets, Tallies, MTTR_BUCKETS};
use super::exposition::Exposition;
use super::signals::ApiStats;

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
    /// Bus tallies.
    pub tallies: &'a Tallies,
    /// HTTP accounting.
    pub api: &'a ApiStats,
    /// Emergency mode.
    pub emergency: bool,
}

fn status_name(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "open",
        IncidentStatus::Mitigating => "mitigating",
        IncidentStatus::Resolved => "resolved",
        IncidentStatus::Escalated => "escalated",
        IncidentStatus::Failed => "failed",
    }
}

/// Renders the exposition.
pub fn render(i: &Inputs<'_>) -> String {
    let mut e = Exposition::default();
    kernels(&mut e, i.kernels);
    bus(&mut e, i);
    incidents(&mut e, i);
    trust(&mut e, &i.trust);
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

fn kernels(e: &mut Exposition, ks: &[StatusSnapshot]) {
    type Get = fn(&StatusSnapshot) -> f64;
    let per_kernel: [(&str, &str, &str, Get); 6] = [
        (
            "grace_kernel_restarts_total",
            "counter",
            "Restarts of the kernel since serve started.",
            |k| k.restarts as f64,
        ),
        (
            "grace_kernel_heartbeat_age_seconds",
            "gauge",
            "Seconds since the kernel's last heartbeat.",
            |k| k.heartbeat_age_ms as f64 / 1000.0,
        ),
        (
            "grace_kernel_heartbeat_timeout_seconds",
            "gauge",
            "Heartbeat age past which the kernel is declared hung.",
            |k| k.heartbeat_timeout_ms as f64 / 1000.0,
        ),
        (
            "grace_kernel_uptime_seconds",
            "gauge",
            "Seconds since the kernel's current incarnation started.",
            |k| k.uptime_s,
        ),
        (
            "grace_kernel_messages_total",
            "counter",
            "Messages the kernel has handled.",
            |k| k.messages as f64,
        ),
        (
            "grace_kernel_mailbox",
            "gauge",
            "Messages waiting in the kernel's mailbox.",
            |k| k.mailbox as f64,
        ),
    ];
    for (name, kind, help, get) in per_kernel {
        e.family(name, kind, help);
        for k in ks {
            e.sample(name, &[("kernel", &k.name)], get(k));
        }
    }
    e.family(
        "grace_kernel_state",
        "gauge",
        "1 for the kernel's current state.",
    );
    for k in ks {
        let st = serde_json::to_value(k.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let crit = if k.critical { "true" } else { "false" };
        e.sample(
            "grace_kernel_state",
            &[("kernel", &k.name), ("state", &st), ("critical", crit)],
            1.0,
        );
    }
    e.family(
        "grace_kernel_handle_latency_seconds",
        "gauge",
        "Message handling time quantiles of the kernel.",
    );
    for k in ks {
        e.sample(
            "grace_kernel_handle_latency_seconds",
            &[("kernel", &k.name), ("quantile", "0.5")],
            k.handle_p50_us / 1e6,
        );
        e.sample(
            "grace_kernel_handle_latency_seconds",
            &[("kernel", &k.name), ("quantile", "0.99")],
            k.handle_p99_us / 1e6,
        );
    }
    let c = super::health::count_kernels(ks);
    e.family("grace_kernels", "gauge", "Kernels by state group.");
    for (state, n) in [
        ("total", c.total),
        ("running", c.running),
        ("failed", c.failed),
        ("degraded", c.degraded),
    ] {
        e.sample("grace_kernels", &[("state", state)], n as f64);
    }
}

fn bus(e: &mut Exposition, i: &Inputs<'_>) {
    let b = i.bus;
    for (name, kind, help, v) in [
        (
            "grace_bus_published_total",
            "counter",
            "Events accepted by the bus.",
            b.published,
        ),
        (
            "grace_bus_delivered_total",
            "counter",
            "Deliveries into subscriber mailboxes.",
            b.delivered,
        ),
        (
            "grace_bus_overflow_total",
            "counter",
            "Events refused because the bus queue was full.",
            b.overflow,
        ),
        (
            "grace_bus_subscriber_drops_total",
            "counter",
            "Deliveries refused because a subscriber's mailbox was full.",
            b.subscriber_drops,
        ),
        (
            "grace_bus_pending",
            "gauge",
            "Events waiting for the message_bus kernel.",
            b.pending,
        ),
        (
            "grace_bus_subscribers",
            "gauge",
            "Bus subscriptions.",
            b.subscribers,
        ),
    ] {
        e.family(name, kind, help);
        e.sample(name, &[], v as f64);
    }
    let t = i.tallies;
    e.family(
        "grace_bus_events_total",
        "counter",
        "Events seen on the bus by topic (since the HTTP server started).",
    );
    for (topic, n) in &t.events {
        e.sample("grace_bus_events_total", &[("topic", topic)], *n as f64);
    }
    e.family(
        "grace_restarts_total",
        "counter",
        "Kernel restarts by kernel, reason and outcome (from kernel.restart.* events).",
    );
    for ((kernel, reason, outcome), n) in &t.restarts {
        e.sample(
            "grace_restarts_total",
            &[("kernel", kernel), ("reason", reason), ("outcome", outcome)],
            *n as f64,
        );
    }
    if let Some(b) = &t.restart_latency {
        e.family(
            "grace_restart_latency_seconds",
            "histogram",
            "Time from a kernel's exit being seen to its replacement running.",
        );
        e.histogram(
            "grace_restart_latency_seconds",
            &[],
            b.bounds,
            &b.le,
            b.sum,
            b.count,
        );
    }
    e.family(
        "grace_kernel_errors_total",
        "counter",
        "kernel.error events by component.",
    );
    for (c, n) in &t.kernel_errors {
        e.sample("grace_kernel_errors_total", &[("component", c)], *n as f64);
    }
}

fn incidents(e: &mut Exposition, i: &Inputs<'_>) {
    let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for inc in i.incidents {
        *by.entry((inc.trigger.as_str(), status_name(inc.status)))
            .or_insert(0) += 1;
    }
    e.family(
        "grace_incidents",
        "gauge",
        "Incidents kept in memory (open and recent) by trigger and current status.",
    );
    for ((trigger, status), n) in &by {
        e.sample(
            "grace_incidents",
            &[("trigger", trigger), ("status", status)],
            *n as f64,
        );
    }
    let s = &i.summary;
    e.family(
        "grace_incidents_total",
        "gauge",
        "Every incident of incidents.jsonl by current status.",
    );
    let b = &s.by_status;
    for (status, n) in [
        ("open", b.open),
        ("mitigating", b.mitigating),
        ("resolved", b.resolved),
        ("escalated", b.escalated),
        ("failed", b.failed),
    ] {
        e.sample("grace_incidents_total", &[("status", status)], n as f64);
    }
    e.family(
        "grace_incidents_open",
        "gauge",
        "Incidents open or mitigating.",
    );
    e.sample("grace_incidents_open", &[], (b.open + b.mitigating) as f64);
    e.family(
        "grace_incident_mttr_summary_seconds",
        "gauge",
        "MTTR over every closed incident of incidents.jsonl (p50, p95, max).",
    );
    for (stat, v) in [
        ("p50", s.mttr_p50_seconds),
        ("p95", s.mttr_p95_seconds),
        ("max", s.mttr_max_seconds),
    ] {
        if let Some(v) = v {
            e.sample("grace_incident_mttr_summary_seconds", &[("stat", stat)], v);
        }
    }
    let empty = Buckets::new(&MTTR_BUCKETS);
    let m = i.tallies.mttr.as_ref().unwrap_or(&empty);
    e.family(
        "grace_incident_mttr_seconds",
        "histogram",
        "Time from detection to closing of the incidents closed since serve started.",
    );
    e.histogram(
        "grace_incident_mttr_seconds",
        &[],
        m.bounds,
        &m.le,
        m.sum,
        m.count,
    );
}

fn trust(e: &mut Exposition, scores: &BTreeMap<String, f64>) {
    e.family(
        "grace_trust_score",
        "gauge",
        "Trust score of each component, 0 to 1.",
    );
    for (c, v) in scores {
        e.sample("grace_trust_score", &[("component", c)], *v);
    }
}

fn playbooks(e: &mut Exposition, t: &Tallies) {
    e.family(
        "grace_playbook_runs_total",
        "counter",
        "Playbook runs by playbook and outcome.",
    );
    for ((p, o), n) in &t.playbook_runs {
        e.sample(
            "grace_playbook_runs_total",
            &[("playbook", p), ("outcome", o)],
            *n as f64,
        );
    }
    e.family(
        "grace_playbook_duration_seconds",
        "histogram",
        "Playbook run durations.",
    );
    for (p, b) in &t.playbook_durations {
        e.histogram(
            "grace_playbook_duration_seconds",
            &[("playbook", p)],
            b.bounds,
            &b.le,
            b.sum,
            b.count,
        );
    }
    e.family(
        "grace_playbook_slo_missed_total",
        "counter",
        "Playbook runs that took longer than their SLO.",
    );
    for (p, n) in &t.playbook_slo_missed {
        e.sample(
            "grace_playbook_slo_missed_total",
            &[("playbook", p)],
            *n as f64,
        );
    }
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
