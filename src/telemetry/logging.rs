//! Tracing set-up: JSON lines to `<state>/logs/grace.jsonl` (flattened, so `jq` reads
//! fields at the top level) and readable text to stderr.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

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
        .with_writer(std::io::stderr)
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
