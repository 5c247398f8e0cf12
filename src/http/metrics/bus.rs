//! The bus figures of `/metrics`: the bus's own counters (published, delivered, refused,
//! pending, subscribers) and the tallies of what passed on it since the HTTP server
//! started (events by topic, kernel restarts and their latency, kernel errors).

use super::Inputs;
use crate::http::exposition::Exposition;

pub(super) fn bus(e: &mut Exposition, i: &Inputs<'_>) {
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
