//! The audit log: opens it (repairing a torn tail, setting a damaged log aside with
//! `aside.rs`), appends records through its writer (`writer.rs`), and waits for their
//! durability. (Format and policies: see the module docs.)

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::aside::{SetAside, CHAIN_RESTARTED};
use super::config::{AuditConfig, FsyncPolicy};
use super::error::{io_err, AuditError};
use super::record::Cursor;
use super::segment;
use super::sync::Syncer;
use super::writer::Writer;

/// The append-only audit log of one state directory. Cheap to share (`Arc`); every
/// method is thread-safe, and several processes may append to the same file.
pub struct AuditLog {
    path: PathBuf,
    policy: FsyncPolicy,
    writer: Mutex<Writer>,
    syncer: Arc<Syncer>,
    set_aside: Option<SetAside>,
}

impl AuditLog {
    /// Opens (creating) the log at `path`: checks every record and cuts a torn tail (and
    /// records that it did). Damage before the tail sets the file aside and starts a
    /// new chain linked to it ([`AuditLog::set_aside`]).
    pub fn open(path: &Path, config: &AuditConfig) -> Result<AuditLog, AuditError> {
        match AuditLog::open_chain(path, config) {
            Err(AuditError::Corrupt { .. }) => {
                let aside = super::aside::set_aside(path)?;
                let mut log = AuditLog::open_chain(path, config)?;
                if let Some((a, written)) = aside {
                    if !written {
                        log.append_durable(CHAIN_RESTARTED, json!(a))?;
                    }
                    log.set_aside = Some(a);
                }
                Ok(log)
            }
            r => r,
        }
    }

    /// The damaged log this open set aside, if it did.
    pub fn set_aside(&self) -> Option<&SetAside> {
        self.set_aside.as_ref()
    }

    fn open_chain(path: &Path, config: &AuditConfig) -> Result<AuditLog, AuditError> {
        let existed = path.exists();
        let file = segment::open_active(path)?;
        if !existed {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(path))?;
            }
        }
        let syncer = Syncer::new(
            file.try_clone().map_err(io_err(path))?,
            config.fsync,
            config.group_interval,
        );
        let mut writer = Writer {
            file,
            lock: None,
            cursor: Cursor::START,
            syncer: syncer.clone(),
            max_segment: config.max_segment_size.bytes().max(1),
        };
        let cut = writer.locked(path, |w| w.catch_up_and_record(path))?;
        let log = AuditLog {
            path: path.to_path_buf(),
            policy: config.fsync,
            writer: Mutex::new(writer),
            syncer,
            set_aside: None,
        };
        if cut {
            let t = log.syncer.note_write();
            log.wait_durable(t)?;
        }
        Ok(log)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// The number of records in the log (the next record's sequence number).
    pub fn len(&self) -> u64 {
        self.writer.lock().cursor.next_seq
    }

    /// Whether the log has no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many fsyncs this log has done (for benchmarks and tests).
    pub fn fsyncs(&self) -> u64 {
        self.syncer.fsyncs()
    }

    /// Appends one record of `kind`; returns its sequence number. Durable on return
    /// under the `always` policy; under `group`, within the group interval.
    pub fn append(&self, kind: &str, data: Value) -> Result<u64, AuditError> {
        let (seq, ticket) = self.write(kind, &data)?;
        if self.policy == FsyncPolicy::Always {
            self.wait_durable(ticket)?;
        }
        Ok(seq)
    }

    /// Appends one record and returns only once it is on disk, whatever the policy
    /// (concurrent callers share one fsync).
    pub fn append_durable(&self, kind: &str, data: Value) -> Result<u64, AuditError> {
        let (seq, ticket) = self.write(kind, &data)?;
        self.wait_durable(ticket)?;
        Ok(seq)
    }

    /// Makes every record appended so far durable.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.syncer.sync_all().map_err(io_err(&self.path))
    }

    /// Appends without waiting for durability whatever the policy; returns the sequence
    /// number and a ticket for [`AuditLog::wait_durable`]. For callers that append under
    /// a lock of their own and wait once it is released, so that concurrent callers share
    /// fsyncs.
    pub(crate) fn append_deferred(
        &self,
        kind: &str,
        data: &Value,
    ) -> Result<(u64, u64), AuditError> {
        self.write(kind, data)
    }

    /// Waits until the record with `ticket` is on disk.
    pub(crate) fn wait_durable(&self, ticket: u64) -> Result<(), AuditError> {
        self.syncer.sync_to(ticket).map_err(io_err(&self.path))
    }

    fn write(&self, kind: &str, data: &Value) -> Result<(u64, u64), AuditError> {
        let path = self.path.as_path();
        let mut w = self.writer.lock();
        let (seq, cut) = w.locked(path, |w| {
            let cut = w.catch_up_and_record(path)?;
            let seq = w.append_record(path, kind, data)?;
            w.rotate_if_full(path);
            Ok((seq, cut))
        })?;
        let ticket = self.syncer.note_write();
        drop(w);
        if cut {
            // The record of a cut must not depend on the group interval.
            self.wait_durable(ticket)?;
        }
        Ok((seq, ticket))
    }
}
