//! `grace serve`: build the tree, run it, stop it cleanly.
//!
//! `run` is library code, so tests start a whole serve in-process. It takes the state
//! directory's serve lock, opens the shared services, starts the supervision tree, the
//! heartbeat monitor, the metrics reporter and the HTTP server, writes `serve.json`, and
//! waits for SIGTERM/SIGINT, a restart request, or the root supervisor failing. Shutdown
//! stops the tree in reverse start order within a bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::Loaded;
use crate::http::HttpKernel;
use crate::http::{HttpError, HttpServer};
use crate::kernel::KernelSpec;
use crate::state::{ServeInfo, StateError, StateLock, StatePaths};
use crate::supervisor::ChildSpec;
use crate::tree::{Extensions, StartError, System, Tree};

/// Exit status of a serve that asks its watchdog to restart it (not a crash).
pub const EXIT_RESTART_REQUESTED: i32 = 75;

/// How long an ordered shutdown of the whole tree may take before serve exits anyway.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);

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
    /// The state directory is in use or unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The shared services could not be opened.
    #[error(transparent)]
    System(#[from] crate::tree::SystemError),
    /// The tree could not start.
    #[error(transparent)]
    Tree(#[from] StartError),
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Logging could not be set up.
    #[error("cannot set up logging in {path}: {source}")]
    Logging {
        /// The logs directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// Why serve stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM or SIGINT.
    Signal(&'static str),
    /// Something asked for the process to be replaced.
    RestartRequested(String),
    /// The root supervisor failed (restart intensity exhausted at the top).
    RootFailed(String),
}

impl StopReason {
    /// The process exit status for this reason.
    pub fn exit_status(&self) -> i32 {
        match self {
            StopReason::Signal(_) => 0,
            StopReason::RestartRequested(_) => EXIT_RESTART_REQUESTED,
            StopReason::RootFailed(_) => 1,
        }
    }
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
    opts.paths
        .create()
        .map_err(|e| StateError::io(opts.paths.root().to_path_buf(), "create", e))?;
    let _lock = StateLock::acquire(&opts.paths.serve_lock(), "a serve")?;
    let system: Arc<System> = System::open(Arc::new(opts.loaded.config.clone()), opts.paths)?;
    tracing::info!(
        state_dir = %system.paths.root().display(),
        config = %opts.loaded.source.display(),
        pid = std::process::id(),
        "serve starting"
    );
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut restarts = system.restart_requests();

    let http = start_http(&system, opts.port, opts.bind.as_deref()).await?;
    let http_child = http.map(|server| {
        let hb = &system.config.heartbeat;
        ChildSpec::kernel(
            KernelSpec::new("http", HttpKernel::factory(server))
                .heartbeat(hb.critical_interval, hb.critical_timeout),
        )
    });
    let tree = Tree::start(
        &system,
        Extensions {
            http: http_child,
            ..Extensions::default()
        },
    )
    .await?;
    let reporter = crate::telemetry::spawn_reporter(
        system.clone(),
        system.config.telemetry.metrics_interval,
        tree.kind_of(),
    );
    tracing::info!(kernels = system.registry.len(), "serve ready");

    let reason = tokio::select! {
        _ = term.recv() => StopReason::Signal("SIGTERM"),
        _ = int.recv() => StopReason::Signal("SIGINT"),
        r = restarts.wait_for(|r| r.is_some()) => StopReason::RestartRequested(
            r.ok().and_then(|v| v.clone()).unwrap_or_default()),
        exit = tree.wait() => StopReason::RootFailed(format!("{exit:?}")),
    };
    tracing::info!(reason = ?reason, "serve stopping");
    let exit = tree.shutdown(SHUTDOWN_BOUND).await;
    tracing::info!(root = ?exit, "supervision tree stopped");
    reporter.abort();
    let _ = system.audit.sync();
    let _ = system.incidents.sync();
    let _ = ServeInfo::remove_if_pid(&system.paths, std::process::id());
    tracing::info!(exit_status = reason.exit_status(), "serve stopped");
    Ok(reason.exit_status())
}

/// Starts the HTTP server (if enabled) and records `serve.json`.
async fn start_http(
    system: &Arc<System>,
    port: Option<u16>,
    bind: Option<&str>,
) -> Result<Option<HttpServer>, ServeError> {
    let cfg = &system.config.http;
    if !cfg.enabled {
        ServeInfo::for_this_process(&system.paths, bind.unwrap_or(&cfg.bind), 0)
            .write(&system.paths)?;
        return Ok(None);
    }
    let server = crate::http::start(system.clone(), cfg, port, bind).await?;
    let addr = server.local_addr();
    ServeInfo::for_this_process(&system.paths, &addr.ip().to_string(), addr.port())
        .write(&system.paths)?;
    tracing::info!(%addr, "http listening");
    Ok(Some(server))
}
