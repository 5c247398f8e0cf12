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
use crate::snapshot::SnapshotManager;
use crate::state::{ServeInfo, StateError, StateLock, StatePaths};
use crate::supervisor::{ChildSpec, SupervisorExit};
use crate::tree::{Extensions, StartError, System, Tree};
use crate::watchdog::PortDecision;

/// Exit status of a serve that asks its watchdog to restart it (not a crash).
pub const EXIT_RESTART_REQUESTED: i32 = 75;

/// The exit status of a serve that refused its configuration (bad usage or bad
/// configuration); the watchdog pauses instead of restarting it at once.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// How long an ordered shutdown of the whole tree may take before serve exits anyway,
/// when the tree's own bound is unknown (a kernel stopped with `Shutdown::Infinity`).
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);

/// What serve's exit may take beyond stopping the tree (flushing the logs).
const EXIT_MARGIN: Duration = Duration::from_secs(1);

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
    /// The configuration, a kernel's kind or options, or a playbook is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
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
    /// The tree ended by itself: its significant kernels ended (`auto_shutdown`).
    Completed(String),
}

impl StopReason {
    /// The process exit status for this reason.
    pub fn exit_status(&self) -> i32 {
        match self {
            StopReason::Signal(_) => 0,
            StopReason::RestartRequested(_) => EXIT_RESTART_REQUESTED,
            StopReason::RootFailed(_) => 1,
            StopReason::Completed(_) => 0,
        }
    }
}

/// Runs serve until it is told to stop; returns the process exit status.
pub async fn run(opts: ServeOptions) -> Result<i32, ServeError> {
    // Everything the configuration refers to is checked before the state directory, the
    // log, the lock or the port is touched: a bad configuration leaves nothing behind.
    crate::config::preflight(&opts.loaded)?;
    let _log = crate::telemetry::init(
        &opts.loaded.config.telemetry.log_level,
        Some(&opts.paths.logs_dir()),
        &opts.loaded.config.logging,
    )
    .map_err(|source| ServeError::Logging {
        path: opts.paths.logs_dir(),
        source,
    })?;
    opts.paths
        .create()
        .map_err(|e| StateError::io(opts.paths.root().to_path_buf(), "create", e))?;
    let _lock = StateLock::acquire(&opts.paths.serve_lock(), "a serve")?;
    // Before any kernel starts: the cgroup, or the subreaper flag and its reaper.
    let containment = crate::kernel::exec::contain::init().describe();
    let system: Arc<System> = System::open(Arc::new(opts.loaded.config.clone()), opts.paths)?;
    crate::incident::import_watchdog_repairs_logged(&system.incidents, &system.paths);
    tracing::info!(
        state_dir = %system.paths.root().display(),
        config = %opts.loaded.source.display(),
        pid = std::process::id(),
        "serve starting"
    );
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut restarts = system.restart_requests();

    let (http, mut info) =
        start_http(&system, opts.port, opts.bind.as_deref(), &containment).await?;
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
    crate::audit::announce_set_aside(&system);
    // The tree's bound, enforced by `shutdown` below, and known to the watchdog.
    let bound = tree.shutdown_bound.unwrap_or(SHUTDOWN_BOUND);
    info.shutdown_timeout_ms =
        Some((bound + crate::supervisor::KILL_WAIT + EXIT_MARGIN).as_millis() as u64);
    info.write(&system.paths)?;
    let reporter = crate::telemetry::spawn_reporter(
        system.clone(),
        system.config.telemetry.metrics_interval,
        tree.kind_of(),
    );
    let mut snapshots = SnapshotManager::from_config(&system.config, &system.paths);
    if let Some(file) = opts.loaded.source.path() {
        snapshots = snapshots.watch(file);
    }
    let snapshot_schedule = crate::snapshot::spawn_schedule(system.clone(), snapshots);
    tracing::info!(kernels = system.registry.len(), "serve ready");

    let reason = tokio::select! {
        _ = term.recv() => StopReason::Signal("SIGTERM"),
        _ = int.recv() => StopReason::Signal("SIGINT"),
        r = restarts.wait_for(|r| r.is_some()) => StopReason::RestartRequested(
            r.ok().and_then(|v| v.clone()).unwrap_or_default()),
        exit = tree.wait() => match exit {
            SupervisorExit::AutoShutdown(why) => StopReason::Completed(why),
            other => StopReason::RootFailed(format!("{other:?}")),
        },
    };
    tracing::info!(reason = ?reason, "serve stopping");
    let exit = tree.shutdown(bound).await;
    tracing::info!(root = ?exit, "supervision tree stopped");
    reporter.abort();
    snapshot_schedule.abort();
    let _ = system.audit.sync();
    let _ = system.incidents.sync();
    let _ = ServeInfo::remove_if_pid(&system.paths, std::process::id());
    crate::kernel::exec::cgroup::remove_base();
    tracing::info!(
        exit_status = reason.exit_status(),
        dropped_stderr_writes = crate::telemetry::dropped_stderr_writes(),
        "serve stopped"
    );
    Ok(reason.exit_status())
}

/// Starts the HTTP server (if enabled) and records `serve.json`.
async fn start_http(
    system: &Arc<System>,
    port: Option<u16>,
    bind: Option<&str>,
    containment: &str,
) -> Result<(Option<HttpServer>, ServeInfo), ServeError> {
    let cfg = &system.config.http;
    if !cfg.enabled {
        let mut info = ServeInfo::for_this_process(&system.paths, bind.unwrap_or(&cfg.bind), 0);
        info.containment = Some(containment.to_owned());
        info.write(&system.paths)?;
        return Ok((None, info));
    }
    let server = match crate::http::start(system.clone(), cfg, port, bind).await {
        Err(HttpError::PortInUse { port: taken, .. }) => {
            heal_port_conflict(system, taken, bind).await?
        }
        other => other?,
    };
    let addr = server.local_addr();
    let mut info = ServeInfo::for_this_process(&system.paths, &addr.ip().to_string(), addr.port());
    info.containment = Some(containment.to_owned());
    info.write(&system.paths)?;
    tracing::info!(%addr, "http listening");
    Ok((Some(server), info))
}

/// Network healing: serve's port is taken. A stale serve of this state directory is
/// stopped and the port bound again; any other holder is left alone and serve binds a
/// free port instead (recorded in `serve.json`). Either way the repair is recorded as a
/// `port_in_use` incident with its MTTR.
async fn heal_port_conflict(
    system: &Arc<System>,
    port: u16,
    bind: Option<&str>,
) -> Result<HttpServer, ServeError> {
    let detected = crate::time::now();
    let decision = crate::watchdog::heal_port_conflict(&system.paths, port);
    tracing::warn!(port, ?decision, "http port in use; healing");
    let cfg = &system.config.http;
    let (server, action) = match decision {
        PortDecision::StopStale { pid, pgid } => {
            crate::watchdog::stop_process(pid, pgid, Duration::from_secs(5)).await;
            let s = crate::http::start(system.clone(), cfg, Some(port), bind).await?;
            (
                s,
                format!("stopped stale serve {pid} and bound {port} again"),
            )
        }
        PortDecision::HeldByLiveServe { pid } => {
            return Err(StateError::Locked {
                what: "a serve".to_owned(),
                path: system.paths.serve_lock(),
                holder: Some(pid),
            }
            .into())
        }
        PortDecision::UseFreePort { holder } => {
            let s = crate::http::start(system.clone(), cfg, Some(0), bind).await?;
            let who = holder.map_or_else(|| "another process".to_owned(), |p| format!("pid {p}"));
            let action = format!(
                "port {port} is held by {who}; bound free port {}",
                s.local_addr().port()
            );
            (s, action)
        }
    };
    record_port_incident(system, port, detected, &action, server.local_addr().port());
    Ok(server)
}

fn record_port_incident(
    system: &System,
    port: u16,
    detected: chrono::DateTime<chrono::Utc>,
    action: &str,
    bound: u16,
) {
    use crate::incident::{IncidentDraft, IncidentStatus, Opened, Severity, StepRecord};
    let draft = IncidentDraft {
        trigger: "port_conflict".to_owned(),
        component: "http".to_owned(),
        failure_mode: "port_in_use".to_owned(),
        severity: Severity::High,
        playbook: Some("port_conflict".to_owned()),
        summary: format!("http port {port} was in use"),
        details: serde_json::json!({ "port": port, "bound": bound }),
        detected_at: Some(crate::time::rfc3339(detected)),
    };
    let step = StepRecord {
        name: "heal".to_owned(),
        action: "bind".to_owned(),
        status: "ok".to_owned(),
        attempts: 1,
        duration_ms: (crate::time::now() - detected).num_milliseconds().max(0) as u64,
        output: serde_json::json!({ "action": action }),
        available_before: None,
        available_after: None,
    };
    let recorded = match system.incidents.open(draft) {
        Ok(Opened::New(inc)) => system
            .incidents
            .resolve(&inc.incident_id, IncidentStatus::Resolved, true, vec![step])
            .map(|i| i.mttr_seconds),
        Ok(_) => Ok(None),
        Err(e) => Err(e),
    };
    match recorded {
        Ok(mttr) => {
            tracing::info!(port, bound, mttr_seconds = ?mttr, action, "port conflict healed")
        }
        Err(e) => tracing::error!(error = %e, "could not record the port_in_use incident"),
    }
}
