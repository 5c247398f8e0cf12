//! Telemetry: tracing set-up (JSON lines to `logs/grace.jsonl`, readable text to
//! stderr, info lines to stdout with `GRACE_LOG_STDOUT=1`), the periodic `actor_metrics` events, and the latency histogram.

mod histogram;
mod logging;
mod metrics;

pub use histogram::Histogram;
pub use logging::{
    dropped_stderr_writes, info_to_stdout, init, write_log_line, write_stderr, LogGuard,
    StderrSink, LOG_STDOUT_ENV,
};
pub use metrics::{report_once, spawn_reporter};
