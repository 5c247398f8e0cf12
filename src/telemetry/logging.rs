//! Tracing set-up: JSON lines to `<state>/logs/grace.jsonl` (flattened, so `jq` reads
//! fields at the top level) and readable text to stderr; with `GRACE_LOG_STDOUT=1`,
//! lines below WARN go to stdout instead ([`info_to_stdout`]), for process managers that
//! keep the two apart (PM2's `out_file` and `error_file`).
//!
//! Stderr may go away under a running process (a closed pipe, a hung-up terminal):
//! every write to it goes through [`write_stderr`], which drops and counts a failed
//! write ([`dropped_stderr_writes`]) instead of panicking as `eprintln!` does; stdout
//! is written the same way.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many writes to stderr failed and were dropped in this process.
pub fn dropped_stderr_writes() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The variable that sends log lines below WARN to stdout.
pub const LOG_STDOUT_ENV: &str = "GRACE_LOG_STDOUT";

/// Whether log lines below WARN go to stdout (`GRACE_LOG_STDOUT=1`, read once; serve
/// inherits it from the watchdog). Warnings and errors always go to stderr.
pub fn info_to_stdout() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(LOG_STDOUT_ENV).is_some_and(|v| v == "1"))
}

/// Writes `bytes` to stderr whole. A failure (EPIPE from a closed pipe, EIO from a
/// hung-up terminal) is counted and returned, never a panic: losing a line of output
/// must never stop the process.
pub fn write_stderr(bytes: &[u8]) -> std::io::Result<()> {
    write_counted(&mut std::io::stderr().lock(), bytes)
}

/// Writes a log line: to stderr, or to stdout when it is below WARN (`serious` false)
/// and [`info_to_stdout`] holds. Failures are counted as [`write_stderr`]'s are.
pub fn write_log_line(serious: bool, bytes: &[u8]) -> std::io::Result<()> {
    if !serious && info_to_stdout() {
        write_counted(&mut std::io::stdout().lock(), bytes)
    } else {
        write_stderr(bytes)
    }
}

fn write_counted(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    let r = out.write_all(bytes).and_then(|()| out.flush());
    if r.is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// The console writer of the text layer (stderr, or stdout for lines below WARN with
/// [`info_to_stdout`]): every write reports success, failed ones are counted
/// (tracing-subscriber would otherwise report them with `eprintln!`, which panics on the
/// same broken stderr).
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrSink {
    serious: bool,
}

impl Write for StderrSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = write_log_line(self.serious, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> fmt::MakeWriter<'a> for StderrSink {
    type Writer = StderrSink;
    fn make_writer(&'a self) -> StderrSink {
        StderrSink { serious: true }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> StderrSink {
        // tracing orders levels by verbosity: ERROR < WARN < INFO.
        StderrSink {
            serious: *meta.level() <= tracing::Level::WARN,
        }
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
        .with_writer(StderrSink::default())
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
