//! Errors of the watchdog and the control commands.

use std::path::PathBuf;

use crate::state::StateError;

/// Why the watchdog could not run, or a control command could not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchdogError {
    /// A state file could not be used (includes "already running" lock refusals).
    #[error(transparent)]
    State(#[from] StateError),
    /// The watchdog log could not be opened.
    #[error(
        "cannot open the watchdog log {path}: {source}; check the state directory's permissions"
    )]
    Log {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers or the runtime could not be set up.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// What.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A control command gave up waiting.
    #[error("{what} did not happen within {waited:?}; see `grace logs` and `grace status`")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: std::time::Duration,
    },
    /// A control command cannot do what was asked in the current state.
    #[error("{0}")]
    Refused(String),
}
