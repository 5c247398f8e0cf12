//! Tracing set-up for serve: every event becomes one [`super::Record`], written as a
//! JSON line to `<state>/logs/grace.jsonl` (rotated, see [`super::RotatingFile`]) by a
//! background writer, and to stderr as `[logging] stderr` says.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::config::LoggingConfig;
use super::layer::RecordLayer;
use super::rotate::RotatingFile;
use super::stderr::StderrOut;

/// The log file's name in the logs directory.
pub const LOG_FILE: &str = "grace.jsonl";

/// Keeps the JSON log writer alive; drop it last (it flushes on drop).
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber. `level` is the default filter (`RUST_LOG`
/// overrides); with `logs_dir`, records also go to `logs_dir/grace.jsonl`, rotated as
/// `logging` says. Calling it twice keeps the first subscriber.
pub fn init(
    level: &str,
    logs_dir: Option<&Path>,
    logging: &LoggingConfig,
) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (file, guard) = match logs_dir {
        Some(dir) => {
            let log = RotatingFile::open(&dir.join(LOG_FILE), logging.rotation())?;
            let (writer, guard) = tracing_appender::non_blocking(log);
            (Some(writer), Some(guard))
        }
        None => (None, None),
    };
    let layer = RecordLayer {
        file,
        stderr: StderrOut::resolve(logging.stderr),
        pid: std::process::id(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    Ok(LogGuard { _file: guard })
}
