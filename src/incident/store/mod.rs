//! The incident store: `incidents.jsonl` and the open incidents in memory.
//!
//! Every state change is appended as one full JSON line (written straight to the OS, no
//! user-space buffer) and as an audit record, as one step: when the audit record cannot
//! be written the line is cut off again, memory is left as it was, and the failure is
//! kept for health to report ([`IncidentStore::durability_error`]). At open the file is
//! folded again, so a restart keeps the summary; incidents an earlier run left open are
//! *orphans*: still open, but no new occurrence is attached to them until the caller
//! adopts or closes them.
//!
//! This module holds the store, its in-memory index and its error; `disk` loads the file
//! and appends to it, `changes` opens and updates incidents, `close` closes them, and
//! `orphans` lists, adopts and imports, `segments` moves closed incidents past
//! retention to their monthly segments.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::ids::IdClock;
use super::model::{Incident, IncidentStatus};
use super::summary::StatusCounts;
use crate::audit::{AuditError, AuditLog, FsyncPolicy, Syncer};

mod changes;
mod close;
mod disk;
mod orphans;
mod segments;

pub use close::Closing;
pub(crate) use orphans::WATCHDOG_DETAILS;
pub use segments::{segment_files, segments_dir};

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
    /// The audit record of a change could not be written, so the change was not made.
    #[error("{0}; the incident change was not recorded")]
    Audit(#[from] AuditError),
    /// `adopt` was given an incident that is not an orphan.
    #[error("incident {0} is not an orphan of an earlier run; only those can be adopted")]
    NotOrphan(String),
    /// `adopt` found another open incident already taking new occurrences of the key.
    #[error(
        "incident {other} is open for the same trigger {trigger:?} and component \
         {component:?}; close one of them before adopting {id}"
    )]
    KeyTaken {
        /// The orphan.
        id: String,
        /// The open incident holding the key.
        other: String,
        /// The trigger.
        trigger: String,
        /// The component.
        component: String,
    },
}

/// The incidents of one state directory. Safe to share between threads and tasks.
pub struct IncidentStore {
    pub(super) path: PathBuf,
    audit: Arc<AuditLog>,
    policy: FsyncPolicy,
    syncer: Arc<Syncer>,
    pub(super) inner: Mutex<Inner>,
    durability: Mutex<Option<String>>,
    pub(super) imports: Mutex<ImportCursor>,
    /// Closed incidents older than this move to segments.
    retain_closed: std::time::Duration,
    /// When closed incidents were last moved to segments.
    last_segmented: Mutex<Option<std::time::Instant>>,
}

/// How far the watchdog's repair records have been imported (see
/// `crate::incident::import_watchdog_repairs`).
#[derive(Debug, Default)]
pub(crate) struct ImportCursor {
    /// The highest repair sequence number already an incident.
    pub(crate) imported: Option<u64>,
    /// The length of the repair file when it was last read.
    pub(crate) seen_len: Option<u64>,
}

pub(super) struct Inner {
    file: File,
    end: u64,
    ids: IdClock,
    pub(super) open: HashMap<String, Incident>,
    dedup: HashMap<(String, String), String>,
    /// Open incidents no one is working on (left by an earlier run, or whose close
    /// could not be recorded): never in `dedup`.
    orphans: HashSet<String>,
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

    /// Why the last change could not be made durable (its line or audit record failed),
    /// or None once a later change was recorded in full. Health reports it.
    pub fn durability_error(&self) -> Option<String> {
        self.durability.lock().clone()
    }

    fn set_durability(&self, r: &Result<(), IncidentError>) {
        let mut d = self.durability.lock();
        match r {
            Ok(()) => *d = None,
            Err(e) => *d = Some(e.to_string()),
        }
    }
}
