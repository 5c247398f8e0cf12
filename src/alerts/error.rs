//! Errors of alerting.

use std::path::PathBuf;

/// Why an alert could not be written or delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The alert file could not be written.
    #[error("cannot write alert {path}: {source}; check that the state directory is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The webhook URL is not usable.
    #[error("[alerts] webhook = {url:?}: {reason}; give an http://host:port/path URL")]
    BadWebhook {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The webhook did not accept the alert.
    #[error("webhook {url} failed: {reason}; check that the receiver runs and answers 2xx")]
    Webhook {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The notifier command failed.
    #[error("alert command {program:?} failed: {reason}; check [alerts] command")]
    Command {
        /// The program.
        program: String,
        /// What happened.
        reason: String,
    },
}
