//! The incident store: `incidents.jsonl` and the open incidents in memory.
//!
//! Every state change is appended as one full JSON line (written straight to the OS, no
//! user-space buffer) and as an audit record. At open the file is folded again, so a
//! restart keeps deduplication of open incidents and the summary.
//!
//! This module holds the store, its in-memory index and its error; `disk` loads the file
//! and appends to it, and `changes` opens, updates and closes incidents.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::ids::IdClock;
use super::model::{Incident, IncidentStatus};
use super::summary::StatusCounts;
use crate::audit::{AuditError, AuditLog, FsyncPolicy, Syncer};

mod changes;
mod disk;

pub use changes::Closing;

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
    /// No open incident has this id.
    #[error("no incident {0}; `grace incidents` lists them")]
    NotFound(String),
    /// The incident is already closed.
    #[error("incident {id} is already {status}; a closed incident cannot change")]
    AlreadyClosed {
        /// The incident.
        id: String,
        /// Its final status.
        status: IncidentStatus,
    },
    /// `resolve` was given a status that does not close an incident.
    #[error("status {0} does not close an incident; use resolved, escalated or failed")]
    NotTerminal(IncidentStatus),
    /// The audit record of a change could not be written (the change itself was).
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The incidents of one state directory. Safe to share between threads and tasks.
pub struct IncidentStore {
    pub(super) path: PathBuf,
    audit: Arc<AuditLog>,
    policy: FsyncPolicy,
    syncer: Arc<Syncer>,
    pub(super) inner: Mutex<Inner>,
}

pub(super) struct Inner {
    file: File,
    end: u64,
    ids: IdClock,
    pub(super) open: HashMap<String, Incident>,
    dedup: HashMap<(String, String), String>,
    pub(super) recent: VecDeque<Incident>,
    keep_recent: usize,
    pub(super) counts: StatusCounts,
    pub(super) mttrs: Vec<f64>,
}

impl Inner {
    fn remember_closed(&mut self, i: Incident) {
        self.recent.push_back(i);
        while self.recent.len() > self.keep_recent {
            self.recent.pop_front();
        }
    }

    fn closed_status(&self, id: &str) -> Option<IncidentStatus> {
        self.recent
            .iter()
            .rev()
            .find(|i| i.incident_id == id)
            .map(|i| i.status)
    }
}

impl IncidentStore {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
