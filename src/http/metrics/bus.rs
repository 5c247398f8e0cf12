//! The bus figures of `/metrics`: the bus's own counters (published, delivered, refused,
//! pending, subscribers) and the tallies of what passed on it since the HTTP server
//! started (events by topic, kernel restarts by reason class and their latency, kernel
//! errors).

use std::fmt::Result;

use crate::bus::BusStats;
use crate::http::collector::{Buckets, Tallies, RESTART_BUCKETS};
use crate::http::exposition::Families;

pub(super) fn bus(f: &mut Families<'_>, b: &BusStats, t: &Tallies) -> Result {
    for (name, help, v) in [
        (
            "grace_bus_published",
            "Events accepted by the bus.",
            b.published,
        ),
        (
            "grace_bus_delivered",
            "Deliveries into subscriber mailboxes.",
            b.delivered,
        ),
        (
            "grace_bus_overflow",
            "Events refused because the bus queue was full.",
            b.overflow,
        ),
        (
            "grace_bus_subscriber_drops",
            "Deliveries refused because a subscriber's mailbox was full.",
            b.subscriber_drops,
        ),
    ] {
        f.counter(name, help, [(&[][..], v)])?;
    }
    f.gauge(
        "grace_bus_pending",
        "Events waiting for the message_bus kernel.",
        [(&[][..], b.pending)],
    )?;
    f.gauge(
        "grace_bus_subscribers",
        "Bus subscriptions.",
        [(&[][..], b.subscribers)],
    )?;
    f.counter_by(
        "grace_bus_events",
        "Events seen on the bus by topic (since the HTTP server started).",
        "topic",
        t.events.iter().map(|(k, n)| (k.as_str(), *n)),
    )?;
    let restarts: Vec<_> = t
        .restarts
        .iter()
        .map(|((k, reason, outcome), n)| {
            (
                [
                    ("kernel", k.as_str()),
                    ("reason", *reason),
                    ("outcome", *outcome),
                ],
                *n,
            )
        })
        .collect();
    f.counter(
        "grace_restarts",
        "Kernel restarts by kernel, reason class and outcome (from kernel.restart.* events).",
        restarts.iter().map(|(l, n)| (&l[..], *n)),
    )?;
    let latency = t
        .restart_latency
        .clone()
        .unwrap_or_else(|| Buckets::new(&RESTART_BUCKETS));
    f.histogram(
        "grace_restart_latency_seconds",
        "Time from a kernel's exit being seen to its replacement running.",
        [(&[][..], latency.data())],
    )?;
    f.counter_by(
        "grace_kernel_errors",
        "kernel.error events by component.",
        "component",
        t.kernel_errors.iter().map(|(c, n)| (c.as_str(), *n)),
    )
}
