//! Why a trigger could not be configured or could not check.

use std::path::PathBuf;

/// A trigger error: what, where, how to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// A `[triggers]` setting is invalid.
    #[error("[triggers.{trigger}] {key}: {reason}")]
    Config {
        /// The trigger section.
        trigger: String,
        /// The setting.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("trigger {trigger}: {path}: {source}")]
    Io {
        /// The trigger.
        trigger: String,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A check failed for another reason.
    #[error("trigger {trigger}: {reason}")]
    Check {
        /// The trigger.
        trigger: String,
        /// What failed.
        reason: String,
    },
}

impl TriggerError {
    /// A configuration error.
    pub fn config(trigger: &str, key: &str, reason: impl Into<String>) -> TriggerError {
        TriggerError::Config {
            trigger: trigger.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(trigger: &str, path: impl Into<PathBuf>, source: std::io::Error) -> TriggerError {
        TriggerError::Io {
            trigger: trigger.to_owned(),
            path: path.into(),
            source,
        }
    }

    /// A failed check.
    pub fn check(trigger: &str, reason: impl Into<String>) -> TriggerError {
        TriggerError::Check {
            trigger: trigger.to_owned(),
            reason: reason.into(),
        }
    }
}
