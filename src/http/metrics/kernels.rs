//! The kernels' figures of `/metrics`: restarts, heartbeat age and timeout, uptime,
//! messages handled, mailbox depth, current state, the histogram of handling times, and
//! the kernels counted by state group.

use std::fmt::Result;
use std::sync::Arc;

use crate::http::exposition::{Families, HistogramData};
use crate::http::health;
use crate::kernel::{KernelStatus, StatusSnapshot};

/// Upper bounds (seconds) of the handling-time histogram's buckets.
pub const HANDLE_BUCKETS: [f64; 13] = [
    1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

/// The handling times of `k` as histogram figures.
fn handle_latency(k: &KernelStatus) -> HistogramData<'static> {
    let bounds_ns: Vec<u64> = HANDLE_BUCKETS.iter().map(|b| (b * 1e9) as u64).collect();
    HistogramData {
        bounds: &HANDLE_BUCKETS,
        counts: k.handle_latency.split_ns(&bounds_ns),
        sum: k.handle_latency.sum_ns() as f64 / 1e9,
    }
}

fn state_name(k: &StatusSnapshot) -> String {
    serde_json::to_value(k.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn kernels(f: &mut Families<'_>, ks: &[Arc<KernelStatus>]) -> Result {
    let snaps: Vec<StatusSnapshot> = ks.iter().map(|k| k.snapshot()).collect();
    let each =
        |get: fn(&StatusSnapshot) -> f64| snaps.iter().map(move |k| (k.name.as_str(), get(k)));
    f.counter_by(
        "grace_kernel_restarts",
        "Restarts of the kernel since serve started.",
        "kernel",
        snaps.iter().map(|k| (k.name.as_str(), k.restarts)),
    )?;
    f.counter_by(
        "grace_kernel_messages",
        "Messages the kernel has handled.",
        "kernel",
        snaps.iter().map(|k| (k.name.as_str(), k.messages)),
    )?;
    for (name, help, get) in [
        (
            "grace_kernel_heartbeat_age_seconds",
            "Seconds since the kernel's last heartbeat.",
            (|k| k.heartbeat_age_ms as f64 / 1000.0) as fn(&StatusSnapshot) -> f64,
        ),
        (
            "grace_kernel_heartbeat_timeout_seconds",
            "Heartbeat age past which the kernel is declared hung.",
            |k| k.heartbeat_timeout_ms as f64 / 1000.0,
        ),
        (
            "grace_kernel_uptime_seconds",
            "Seconds since the kernel's current incarnation started.",
            |k| k.uptime_s,
        ),
        (
            "grace_kernel_mailbox",
            "Messages waiting in the kernel's mailbox.",
            |k| k.mailbox as f64,
        ),
    ] {
        f.gauge_by(name, help, "kernel", each(get))?;
    }
    let names: Vec<String> = snaps.iter().map(state_name).collect();
    let states: Vec<[(&str, &str); 3]> = snaps
        .iter()
        .zip(&names)
        .map(|(k, st)| {
            [
                ("kernel", k.name.as_str()),
                ("state", st.as_str()),
                ("critical", if k.critical { "true" } else { "false" }),
            ]
        })
        .collect();
    f.gauge(
        "grace_kernel_state",
        "1 for the kernel's current state.",
        states.iter().map(|l| (&l[..], 1u64)),
    )?;
    let labels: Vec<[(&str, &str); 1]> = snaps
        .iter()
        .map(|k| [("kernel", k.name.as_str())])
        .collect();
    f.histogram(
        "grace_kernel_handle_latency_seconds",
        "Time the kernel took to handle each message.",
        labels
            .iter()
            .zip(ks)
            .map(|(l, k)| (&l[..], handle_latency(k))),
    )?;
    let c = health::count_kernels(&snaps);
    f.gauge(
        "grace_kernels",
        "Kernels by state group.",
        [
            (&[("state", "total")][..], c.total),
            (&[("state", "running")][..], c.running),
            (&[("state", "failed")][..], c.failed),
            (&[("state", "degraded")][..], c.degraded),
        ],
    )
}
