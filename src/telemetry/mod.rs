//! Telemetry: tracing set-up (JSON lines to `logs/grace.jsonl`, readable text to
//! stderr), the periodic `actor_metrics` events, and the latency histogram.

pub mod color;
mod histogram;
mod logging;
mod metrics;

pub use histogram::Histogram;
pub use logging::{dropped_stderr_writes, init, write_stderr, LogGuard, StderrSink};
pub use metrics::{report_once, spawn_reporter};
