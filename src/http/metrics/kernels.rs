//! The kernels' figures of `/metrics`: restarts, heartbeat age and timeout, uptime,
//! messages handled, mailbox depth, current state, handling latency quantiles, and the
//! kernels counted by state group.

use crate::http::exposition::Exposition;
use crate::http::health;
use crate::kernel::StatusSnapshot;

pub(super) fn kernels(e: &mut Exposition, ks: &[StatusSnapshot]) {
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
    let c = health::count_kernels(ks);
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
