//! Snapshots of watched files (model weights, configs, kernel artifacts): taken on a
//! schedule into `snapshots/<kind>/<name>_<YYYYmmdd_HHMMSS>.<ext>` with a `latest` copy
//! and a checksum manifest; restored from the newest snapshot that verifies, so a
//! corrupted snapshot is skipped, never restored (DESIGN.md, "Snapshots").
//!
//! [`SnapshotManager`] does the file work; [`policy`] holds the decisions as plain
//! functions (retention, the restore candidate); [`spawn_schedule`] runs the periodic
//! snapshots; [`register_actions`] adds the playbook actions `create_snapshot`,
//! `restore_from_snapshot`, `restore_model_weights`, `rollback_deployment`,
//! `quarantine` and `release_quarantine`, and declares the `snapshots` capability.

mod actions;
mod config;
mod manager;
mod manifest;
pub mod policy;
mod schedule;

use std::path::PathBuf;

pub use actions::register_actions;
pub use config::SnapshotsConfig;
pub use manager::{Restored, SnapshotManager};
pub use manifest::{sha256_hex, Entry, Manifest};
pub use schedule::spawn_schedule;

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// I/O, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest could not be read or written.
    #[error("snapshot manifest {path}: {reason}; delete it to start a fresh manifest")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No snapshot of the file verifies.
    #[error(
        "no verified snapshot of {source_path} ({corrupted} corrupted skipped); take one with \
         create_snapshot while the file is good"
    )]
    NoSnapshot {
        /// The watched file.
        source_path: PathBuf,
        /// How many corrupted snapshots were skipped.
        corrupted: usize,
    },
    /// A glob in `[snapshots]` is malformed.
    #[error("[snapshots] pattern {pattern:?}: {reason}; fix the glob in grace.toml")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

impl SnapshotError {
    pub(crate) fn io(context: String, source: std::io::Error) -> SnapshotError {
        SnapshotError::Io { context, source }
    }
}
