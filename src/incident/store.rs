//! The incident store: `incidents.jsonl` and the open incidents in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::AuditLog;

/// Why an incident operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IncidentError {
    /// I/O on the incidents file.
    #[error("incidents file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The incidents of one state directory.
pub struct IncidentStore {
    path: PathBuf,
    _audit: Arc<AuditLog>,
}

impl IncidentStore {
    /// Opens (creating) the store at `path`, recording to `audit`.
    pub fn open(path: &Path, audit: Arc<AuditLog>) -> Result<IncidentStore, IncidentError> {
        Ok(IncidentStore {
            path: path.to_path_buf(),
            _audit: audit,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
