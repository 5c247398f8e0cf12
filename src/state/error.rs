//! Errors of the state-directory files owned by the watchdog: the kill switch, the locks
//! and `serve.json`.

use std::path::PathBuf;

/// Why a state file could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another process holds the lock.
    #[error(
        "{what} is already running for this state directory (pid {holder}, lock {path}); \
         stop it first (`grace stop --all`) or use another --state-dir",
        holder = holder.map(|p| p.to_string()).unwrap_or_else(|| "unknown".to_owned())
    )]
    Locked {
        /// What holds it ("a watchdog", "a serve").
        what: String,
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when it could be learnt.
        holder: Option<u32>,
    },
    /// A file could not be read or written.
    #[error("{path}: {action} failed: {source}; check the permissions of the state directory")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was tried.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds something that is not what Grace wrote.
    #[error("{path}: not a valid {what}: {reason}; fix or delete the file")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// Why it did not parse.
        reason: String,
    },
}

impl StateError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        StateError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
