//! Tracing set-up: JSON lines to `<state>/logs/grace.jsonl` (flattened, so `jq` reads
//! fields at the top level) and readable text to stderr.
//!
//! Stderr may go away under a running process (a closed pipe, a hung-up terminal):
//! every write to it goes through [`write_stderr`], which drops and counts a failed
//! write ([`dropped_stderr_writes`]) instead of panicking as `eprintln!` does.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many writes to stderr failed and were dropped in this process.
pub fn dropped_stderr_writes() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Writes `bytes` to stderr whole. A failure (EPIPE from a closed pipe, EIO from a
/// hung-up terminal) is counted and returned, never a panic: losing a line of output
/// must never stop the process.
pub fn write_stderr(bytes: &[u8]) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    let r = err.write_all(bytes).and_then(|()| err.flush());
    if r.is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// The stderr writer of the text layer: every write reports success, failed ones are
/// counted (tracing-subscriber would otherwise report them with `eprintln!`, which
/// panics on the same broken stderr).
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrSink;

impl Write for StderrSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = write_stderr(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> fmt::MakeWriter<'a> for StderrSink {
    type Writer = StderrSink;
    fn make_writer(&'a self) -> StderrSink {
        StderrSink
    }
}

/// Keeps the JSON log writer alive; drop it last (it flushes on drop).
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber. `level` is the default filter (`RUST_LOG`
/// overrides); with `logs_dir`, JSON lines also go to `logs_dir/grace.jsonl`.
/// Calling it twice keeps the first subscriber.
pub fn init(level: &str, logs_dir: Option<&Path>) -> std::io::Result<LogGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = fmt::layer()
        .with_writer(StderrSink)
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(super::color::stderr_escapes())
        .compact()
        .with_filter(filter());
    let (json, guard) = match logs_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let appender = tracing_appender::rolling::never(dir, "grace.jsonl");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer)
                .log_internal_errors(false)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(json)
        .try_init();
    Ok(LogGuard { _file: guard })
}
