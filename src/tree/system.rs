//! The services shared by every part of a running tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::audit::{AuditError, AuditLog};
use crate::bus::Bus;
use crate::config::Config;
use crate::incident::{IncidentError, IncidentStore};
use crate::kernel::Liveness;
use crate::state::StatePaths;
use crate::trigger::{ApiSignals, Conditions};
use crate::trust::{TrustError, TrustLedger};

use super::registry::Registry;

/// Why the shared services could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}; choose another with --state-dir")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The incident store could not be opened.
    #[error(transparent)]
    Incidents(#[from] IncidentError),
    /// The trust ledger could not be opened.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// What every kernel, trigger, playbook action and HTTP handler can reach. State that
/// must outlive an actor's restart lives here (or in files), never inside the actor.
pub struct System {
    /// The event bus.
    pub bus: Bus,
    /// Kernels by name.
    pub registry: Registry,
    /// Where files go.
    pub paths: StatePaths,
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Incidents.
    pub incidents: Arc<IncidentStore>,
    /// Trust scores.
    pub trust: Arc<TrustLedger>,
    /// Request counts, timeouts and latencies, recorded by the HTTP server and read by
    /// the API triggers.
    pub api: Arc<ApiSignals>,
    /// The trigger conditions that hold now (for `wait` with `until_clear`).
    pub conditions: Arc<Conditions>,
    /// What kernels tell the heartbeat monitor and ticker (busy kernels, ticking changes).
    pub liveness: Liveness,
    emergency: AtomicBool,
    restart_request: tokio::sync::watch::Sender<Option<String>>,
}

impl System {
    /// Opens the shared services over the state directory `paths` (created if needed).
    pub fn open(config: Arc<Config>, paths: StatePaths) -> Result<Arc<System>, SystemError> {
        paths.create().map_err(|source| SystemError::StateDir {
            path: paths.root().to_path_buf(),
            source,
        })?;
        let bus = Bus::default();
        let audit = Arc::new(AuditLog::open(&paths.audit_log(), &config.audit)?);
        let incidents = Arc::new(IncidentStore::load(
            &paths.incidents(),
            audit.clone(),
            &config.incidents,
        )?);
        let trust = Arc::new(TrustLedger::open(
            bus.clone(),
            audit.clone(),
            &paths.trust_json(),
            &config.trust,
        )?);
        Ok(Arc::new(System {
            bus,
            registry: Registry::default(),
            paths,
            config,
            audit,
            incidents,
            trust,
            api: Arc::new(ApiSignals::default()),
            conditions: Arc::new(Conditions::default()),
            liveness: Liveness::default(),
            emergency: AtomicBool::new(false),
            restart_request: tokio::sync::watch::Sender::new(None),
        }))
    }

    /// Whether emergency mode is on (set by the emergency playbook).
    pub fn emergency(&self) -> bool {
        self.emergency.load(Ordering::Acquire)
    }

    /// Turns emergency mode on or off; returns the previous value.
    pub fn set_emergency(&self, on: bool) -> bool {
        self.emergency.swap(on, Ordering::AcqRel)
    }

    /// Asks for this serve process to be replaced: `grace serve` shuts down gracefully
    /// and exits with [`crate::serve::EXIT_RESTART_REQUESTED`], which the watchdog
    /// answers with an immediate restart that does not count as a crash.
    pub fn request_restart(&self, reason: &str) {
        tracing::warn!(reason, "restart of serve requested");
        self.restart_request.send_replace(Some(reason.to_owned()));
    }

    /// A receiver that changes when a restart is requested.
    pub fn restart_requests(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.restart_request.subscribe()
    }
}
