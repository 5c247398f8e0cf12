//! Telemetry: the log record schema shared by serve and the watchdog, log files bounded
//! by rotation, stderr output (journald priorities included; records below WARN to
//! stdout with `GRACE_LOG_STDOUT=1`), the periodic
//! `actor_metrics` summary, and the latency histogram.

pub mod color;
mod config;
mod histogram;
mod layer;
mod logging;
mod metrics;
mod record;
mod rotate;
mod stderr;

pub use config::LoggingConfig;
pub use histogram::Histogram;
pub use logging::{init, LogGuard, LOG_FILE};
pub use metrics::{report_once, spawn_reporter, Summary, TOP_N};
pub use record::{Level, Record, TextStyle};
pub use rotate::{rotated, rotated_files, RotatingFile, Rotation};
pub use stderr::{
    dropped_stderr_writes, info_to_stdout, stderr_is_journal, write_log_line, write_stderr,
    StderrFormat, StderrOut, LOG_STDOUT_ENV, STDERR_ENV,
};
