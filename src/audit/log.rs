//! The audit log writer: appends hash-chained records, repairs a torn tail at open, and
//! sets a damaged log aside at open (`aside.rs`). (Format and policies: see the module
//! docs.)

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};

use super::aside::{SetAside, CHAIN_RESTARTED};
use super::config::{AuditConfig, FsyncPolicy};
use super::record::{self, Cursor, Problem, MAX_PAYLOAD};
use super::sync::Syncer;

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// I/O on the log file.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A record before the end of the log is damaged or does not belong to the chain.
    #[error(
        "audit log {path}: record #{seq} at byte {offset} is bad ({reason}); the records \
         from there on cannot be trusted, so Grace will not append after them. Run `grace \
         audit verify` for details; restarting serve sets the file aside (kept for \
         investigation) and starts a new chain linked to its last good record"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The sequence number the bad record should have.
        seq: u64,
        /// Its byte offset.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is shorter than what this process already wrote to it.
    #[error(
        "audit log {path} shrank from {expected} to {found} bytes while open: something \
         outside Grace truncated or replaced it; run `grace audit verify` and restart"
    )]
    Shrunk {
        /// The file.
        path: PathBuf,
        /// Bytes this process knew of.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// A record is too large to append.
    #[error("audit record of kind {kind} is {size} bytes, over the limit of {MAX_PAYLOAD}")]
    TooLarge {
        /// The record's kind.
        kind: String,
        /// Its encoded size.
        size: usize,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The append-only audit log of one state directory. Cheap to share (`Arc`); every
/// method is thread-safe, and several processes may append to the same file.
pub struct AuditLog {
    path: PathBuf,
    policy: FsyncPolicy,
    writer: Mutex<Writer>,
    syncer: Arc<Syncer>,
    set_aside: Option<SetAside>,
}

struct Writer {
    file: File,
    /// A duplicate of `file` used for the inter-process lock (`flock`).
    lock: Option<File>,
    cursor: Cursor,
}

/// What was cut from a torn tail.
struct Cut {
    problem: Problem,
    bytes: u64,
    saved_to: Option<PathBuf>,
}

#[derive(Serialize)]
struct RecordRef<'a> {
    seq: u64,
    at: &'a str,
    kind: &'a str,
    data: &'a Value,
}

impl Writer {
    /// Runs `f` holding the exclusive inter-process lock on the file.
    fn locked<T>(
        &mut self,
        path: &Path,
        f: impl FnOnce(&mut Writer) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let handle = match self.lock.take() {
            Some(h) => h,
            None => self.file.try_clone().map_err(io_err(path))?,
        };
        let guard = match Flock::lock(handle, FlockArg::LockExclusive) {
            Ok(g) => g,
            Err((h, errno)) => {
                self.lock = Some(h);
                return Err(io_err(path)(errno.into()));
            }
        };
        let r = f(self);
        match guard.unlock() {
            Ok(h) => self.lock = Some(h),
            // Dropping the guard unlocks and closes it; the next call duplicates anew.
            Err((_guard, errno)) => tracing::warn!(error = %errno, "audit log unlock failed"),
        }
        r
    }

    /// Checks records other processes appended since our last write, cutting a torn
    /// tail they left.
    fn catch_up(&mut self, path: &Path) -> Result<Option<Cut>, AuditError> {
        let len = self.file.metadata().map_err(io_err(path))?.len();
        let at = self.cursor.offset;
        if len == at {
            return Ok(None);
        }
        if len < at {
            return Err(AuditError::Shrunk {
                path: path.to_path_buf(),
                expected: at,
                found: len,
            });
        }
        let mut buf = vec![0u8; (len - at) as usize];
        self.file
            .read_exact_at(&mut buf, at)
            .map_err(io_err(path))?;
        let (cursor, cut) = check_and_repair(path, &self.file, &buf, self.cursor)?;
        self.cursor = cursor;
        Ok(cut)
    }
}

impl Writer {
    /// Catches up with other writers; when it cut a torn tail, appends the record of the
    /// cut first. Returns whether it cut. Call with the lock held.
    fn catch_up_and_record(&mut self, path: &Path) -> Result<bool, AuditError> {
        let Some(cut) = self.catch_up(path)? else {
            return Ok(false);
        };
        let data = json!({
            "offset": cut.problem.offset,
            "seq": cut.problem.seq,
            "bytes": cut.bytes,
            "reason": cut.problem.reason.to_string(),
            "saved_to": cut.saved_to.as_ref().map(|p| p.display().to_string()),
        });
        self.append_record(path, "audit.torn_tail_cut", &data)?;
        Ok(true)
    }

    /// Appends one record after the last good one. Call with the lock held.
    fn append_record(&mut self, path: &Path, kind: &str, data: &Value) -> Result<u64, AuditError> {
        let at = crate::time::rfc3339(crate::time::now());
        let seq = self.cursor.next_seq;
        let payload = serde_json::to_vec(&RecordRef {
            seq,
            at: &at,
            kind,
            data,
        })
        .map_err(|e| io_err(path)(e.into()))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(AuditError::TooLarge {
                kind: kind.to_owned(),
                size: payload.len(),
            });
        }
        let frame = record::encode(&self.cursor.last_hash, &payload);
        if let Err(e) = self.file.write_all_at(&frame, self.cursor.offset) {
            // Leave no partial record behind for the next append to follow.
            let _ = self.file.set_len(self.cursor.offset);
            return Err(io_err(path)(e));
        }
        self.cursor = Cursor {
            offset: self.cursor.offset + frame.len() as u64,
            last_hash: record::hash(&frame),
            next_seq: seq + 1,
        };
        Ok(seq)
    }
}

/// Scans `bytes` (the file from `from.offset` on); cuts a torn tail (saving the cut bytes
/// beside the log), refuses corruption.
fn check_and_repair(
    path: &Path,
    file: &File,
    bytes: &[u8],
    from: Cursor,
) -> Result<(Cursor, Option<Cut>), AuditError> {
    let s = record::scan(bytes, from);
    let Some(problem) = s.problem else {
        return Ok((s.cursor, None));
    };
    if !problem.torn {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            seq: problem.seq,
            offset: problem.offset,
            reason: problem.reason.to_string(),
        });
    }
    let tail = &bytes[(problem.offset - from.offset) as usize..];
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit.log".to_owned());
    let aside = path.with_file_name(format!(
        "{name}.torn-{}-{}",
        crate::time::compact(crate::time::now()),
        problem.offset
    ));
    let saved_to = match crate::state::atomic_write(&aside, tail) {
        Ok(()) => Some(aside),
        Err(e) => {
            tracing::warn!(error = %e, file = %aside.display(), "cannot keep the torn tail");
            None
        }
    };
    file.set_len(problem.offset).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    tracing::warn!(
        file = %path.display(),
        offset = problem.offset,
        seq = problem.seq,
        bytes = tail.len(),
        reason = %problem.reason,
        saved_to = saved_to.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "audit log: torn tail cut (a record cut short by a crash)"
    );
    Ok((
        s.cursor,
        Some(Cut {
            problem,
            bytes: tail.len() as u64,
            saved_to,
        }),
    ))
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path))?;
        if !existed {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(path))?;
            }
        }
        let mut writer = Writer {
            file: file.try_clone().map_err(io_err(path))?,
            lock: None,
            cursor: Cursor::START,
        };
        let cut = writer.locked(path, |w| w.catch_up_and_record(path))?;
        let syncer = Syncer::new(file, config.fsync, config.group_interval);
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
            Ok((w.append_record(path, kind, data)?, cut))
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

/// Reads every record of the log at `path` (none if it does not exist). Fails at the
/// first bad record, torn tail included.
pub fn read_all(path: &Path) -> Result<Vec<record::AuditRecord>, AuditError> {
    let bytes = match super::verify::read_shared(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let (records, problem) = record::decode_all(&bytes);
    match problem {
        None => Ok(records),
        Some(p) => Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            seq: p.seq,
            offset: p.offset,
            reason: p.reason.to_string(),
        }),
    }
}
