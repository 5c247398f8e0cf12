//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by
//! hand from the kernels' shared status, the bus counters, the incidents, the bus
//! tallies and the HTTP server's own accounting.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::bus::BusStats;
use crate::incident::{Incident, IncidentStatus};
use crate::kernel::StatusSnapshot;

use super::collector::{Tallies, DURATION_BUCKETS};
use super::signals::ApiStats;

/// Upper bounds (seconds) of the MTTR histogram.
pub const MTTR_BUCKETS: [f64; 12] = [
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    /// Starts a metric family with its help text and type.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value(v));
    }

    /// Writes a histogram's buckets, sum and count from cumulative counts per bound.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) {
        let bucket = format!("{name}_bucket");
        for (b, c) in bounds.iter().zip(cumulative) {
            let le = value(*b);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *c as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// What `/metrics` is made of.
pub struct Inputs<'a> {
    /// Every kernel.
    pub kernels: &'a [StatusSnapshot],
    /// Bus counters.
    pub bus: BusStats,
    /// Incidents, folded.
    pub incidents: &'a [Incident],
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
    incidents(&mut e, i.incidents);
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
    e.family(
        "grace_kernel_errors_total",
        "counter",
        "kernel.error events by component.",
    );
    for (c, n) in &t.kernel_errors {
        e.sample("grace_kernel_errors_total", &[("component", c)], *n as f64);
    }
}

fn incidents(e: &mut Exposition, incs: &[Incident]) {
    let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for inc in incs {
        *by.entry((inc.trigger.as_str(), status_name(inc.status)))
            .or_insert(0) += 1;
    }
    e.family(
        "grace_incidents",
        "gauge",
        "Incidents by trigger and current status.",
    );
    for ((trigger, status), n) in &by {
        e.sample(
            "grace_incidents",
            &[("trigger", trigger), ("status", status)],
            *n as f64,
        );
    }
    e.family(
        "grace_incidents_open",
        "gauge",
        "Incidents open or mitigating.",
    );
    e.sample(
        "grace_incidents_open",
        &[],
        incs.iter().filter(|i| i.status.is_open()).count() as f64,
    );
    let mttr: Vec<f64> = incs
        .iter()
        .filter(|i| i.status == IncidentStatus::Resolved)
        .filter_map(|i| i.mttr_seconds)
        .collect();
    let cumulative: Vec<u64> = MTTR_BUCKETS
        .iter()
        .map(|b| mttr.iter().filter(|m| **m <= *b).count() as u64)
        .collect();
    e.family(
        "grace_incident_mttr_seconds",
        "histogram",
        "Time from detection to resolution of resolved incidents.",
    );
    e.histogram(
        "grace_incident_mttr_seconds",
        &[],
        &MTTR_BUCKETS,
        &cumulative,
        mttr.iter().sum(),
        mttr.len() as u64,
    );
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
            &DURATION_BUCKETS,
            &b.le,
            b.sum,
            b.count,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_histograms_end_with_inf() {
        let mut e = Exposition::default();
        e.family("x", "histogram", "a\nb");
        e.sample("y", &[("k", "a\"b\\c\nd")], 1.5);
        e.histogram("x", &[("p", "q")], &[1.0, 2.0], &[1, 2], 3.0, 3);
        let t = e.finish();
        assert!(t.contains("# HELP x a\\nb\n"));
        assert!(t.contains("y{k=\"a\\\"b\\\\c\\nd\"} 1.5\n"));
        assert!(t.contains("x_bucket{p=\"q\",le=\"+Inf\"} 3\n"));
        assert!(t.contains("x_bucket{p=\"q\",le=\"1\"} 1\n"));
        assert!(t.contains("x_count{p=\"q\"} 3\n"));
    }
}
