//! Serve's own figures on `/metrics`: HTTP requests and connections, emergency mode,
//! the watchdog's record of serve (restarts by cause, crash loops, the kill switch, the
//! last exit), this process (`process_*`, as every Prometheus client names them) and the
//! build.

use std::fmt::Result;

use crate::http::conns::ConnStats;
use crate::http::exposition::Families;
use crate::http::readings::WatchdogFigures;
use crate::http::samples::ProcessSample;
use crate::http::signals::ApiStats;

pub(super) fn http(f: &mut Families<'_>, api: &ApiStats, conns: &ConnStats) -> Result {
    let routes = api.by_route();
    let statuses: Vec<String> = routes.keys().map(|(_, _, s)| s.to_string()).collect();
    let samples: Vec<_> = routes
        .iter()
        .zip(&statuses)
        .map(|(((m, r, _), n), s)| ([("method", *m), ("route", r.as_str()), ("status", s)], *n))
        .collect();
    f.counter(
        "grace_http_requests",
        "HTTP requests by method, route and status.",
        samples.iter().map(|(l, n)| (&l[..], *n)),
    )?;
    f.counter(
        "grace_http_timeouts",
        "HTTP requests that exceeded the request timeout.",
        [(&[][..], api.timeouts())],
    )?;
    let c = conns.figures();
    f.gauge(
        "grace_http_connections",
        "HTTP connections open.",
        [(&[][..], c.open)],
    )?;
    f.gauge(
        "grace_http_requests_in_progress",
        "HTTP requests being handled or answered now.",
        [(&[][..], c.in_progress)],
    )?;
    f.gauge(
        "grace_http_connections_limit",
        "HTTP connections served at once at most ([http] max_connections, lowered to fit the descriptor limit).",
        [(&[][..], c.limit)],
    )?;
    f.counter(
        "grace_http_connections_rejected",
        "Connections answered 503 because the limit was reached with no idle connection to close.",
        [(&[][..], c.rejected)],
    )?;
    f.counter(
        "grace_http_connections_evicted",
        "Idle connections closed to make room for a new one at the limit.",
        [(&[][..], c.evicted)],
    )
}

pub(super) fn emergency(f: &mut Families<'_>, on: bool) -> Result {
    f.gauge(
        "grace_emergency_mode",
        "1 while emergency mode is on.",
        [(&[][..], u64::from(on))],
    )
}

pub(super) fn watchdog(f: &mut Families<'_>, w: &WatchdogFigures) -> Result {
    f.gauge(
        "grace_watchdog_running",
        "1 while the watchdog of this state directory runs (its pid file names a live process).",
        [(&[][..], u64::from(w.running))],
    )?;
    f.gauge(
        "grace_watchdog_kill_switch",
        "1 while the kill switch is engaged (grace stop): the watchdog keeps serve down.",
        [(&[][..], u64::from(w.kill_switch))],
    )?;
    f.counter_by(
        "grace_watchdog_serve_restarts",
        "Restarts of serve by the watchdog, by cause (how the run before ended), ever.",
        "cause",
        w.restarts.iter().map(|(c, n)| (c.as_str(), *n)),
    )?;
    f.counter(
        "grace_watchdog_crash_loops",
        "Pauses after repeated failed starts of serve (each raises watchdog.crash_loop), ever.",
        [(&[][..], w.crash_loops)],
    )?;
    let cause = w.last_exit_cause.as_deref().unwrap_or("unknown");
    f.gauge_by(
        "grace_watchdog_serve_last_exit_timestamp_seconds",
        "When serve last stopped (seconds since the Unix epoch), labelled with how.",
        "cause",
        w.last_exit_at.map(|at| (cause, at)),
    )
}

pub(super) fn process(f: &mut Families<'_>, p: &ProcessSample) -> Result {
    f.counter(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        [(&[][..], p.cpu_seconds)],
    )?;
    for (name, help, v) in [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds,
        ),
        ("process_threads", "Number of OS threads.", p.threads),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
    ] {
        f.gauge(name, help, [(&[][..], v)])?;
    }
    Ok(())
}

pub(super) fn build(f: &mut Families<'_>) -> Result {
    f.gauge(
        "grace_build_info",
        "The running build: 1, labelled with its version.",
        [(&[("version", env!("CARGO_PKG_VERSION"))][..], 1u64)],
    )
}
