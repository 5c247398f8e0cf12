//! The writer behind [`super::AuditLog`]: appends hash-chained records under an
//! inter-process lock, catches up with records other processes appended, cuts a torn
//! tail, and moves on to a new segment when the file is full (`segment.rs`).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::{io_err, AuditError};
use super::record::{self, Cursor, MAX_PAYLOAD};
use super::scan::{self, Problem};
use super::segment;
use super::sync::Syncer;

fn same_file(a: &File, b: &File) -> bool {
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}

pub(super) struct Writer {
    pub(super) file: File,
    /// A duplicate of `file` used for the inter-process lock (`flock`).
    pub(super) lock: Option<File>,
    pub(super) cursor: Cursor,
    /// Fsyncs the file (its file is replaced with ours when we move to a new one).
    pub(super) syncer: Arc<Syncer>,
    /// The size past which the file is closed as a segment.
    pub(super) max_segment: u64,
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
    /// Runs `f` holding the exclusive inter-process lock on the file. When the file at
    /// `path` is no longer ours (another process closed it as a segment, or set it
    /// aside), the new one is opened and locked instead, and read from its start.
    pub(super) fn locked<T>(
        &mut self,
        path: &Path,
        f: impl FnOnce(&mut Writer) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let guard = loop {
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
            if self.is_current(path)? {
                break guard;
            }
            drop(guard);
            self.reopen(path)?;
        };
        let r = f(self);
        match guard.unlock() {
            // After a switch to a new segment the handle locks the old file: drop it.
            Ok(h) if same_file(&h, &self.file) => self.lock = Some(h),
            Ok(_) => {}
            // Dropping the guard unlocks and closes it; the next call duplicates anew.
            Err((_guard, errno)) => tracing::warn!(error = %errno, "audit log unlock failed"),
        }
        r
    }

    /// Whether the file at `path` is the one we write.
    fn is_current(&self, path: &Path) -> Result<bool, AuditError> {
        let ours = self.file.metadata().map_err(io_err(path))?;
        Ok(std::fs::metadata(path).is_ok_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev()))
    }

    /// Moves on to the file now at `path`, to be read from its start.
    fn reopen(&mut self, path: &Path) -> Result<(), AuditError> {
        let file = segment::open_active(path)?;
        self.syncer
            .replace_file(file.try_clone().map_err(io_err(path))?);
        self.file = file;
        self.lock = None;
        self.cursor = Cursor::START;
        Ok(())
    }

    /// Closes the file as a segment once it has passed the segment size, and goes on in
    /// a new one. Call with the lock held, after an append. A switch that fails leaves
    /// the records where they are; it is tried again after the next append.
    pub(super) fn rotate_if_full(&mut self, path: &Path) {
        if self.cursor.offset < self.max_segment {
            return;
        }
        let switched = self
            .file
            .sync_all()
            .map_err(io_err(path))
            .and_then(|()| segment::start_next(path, self.cursor, segment::Closing::Full));
        match switched {
            Ok((file, cursor)) => match file.try_clone() {
                Ok(dup) => {
                    self.syncer.replace_file(dup);
                    self.file = file;
                    self.cursor = cursor;
                }
                Err(e) => tracing::error!(error = %e, "audit log: cannot use the new segment"),
            },
            Err(e) => tracing::warn!(error = %e, "audit log: cannot close the full segment"),
        }
    }

    /// Checks records other processes appended since our last write, cutting a torn
    /// tail they left. Read from its start, a file's chain starts where its first
    /// record says ([`scan::start_of`]).
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
        let from = if at == 0 {
            scan::start_of(&buf)
        } else {
            self.cursor
        };
        let (cursor, cut) = check_and_repair(path, &self.file, &buf, from)?;
        self.cursor = cursor;
        Ok(cut)
    }
}

impl Writer {
    /// Catches up with other writers; when it cut a torn tail, appends the record of the
    /// cut first. Returns whether it cut. Call with the lock held.
    pub(super) fn catch_up_and_record(&mut self, path: &Path) -> Result<bool, AuditError> {
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
    pub(super) fn append_record(
        &mut self,
        path: &Path,
        kind: &str,
        data: &Value,
    ) -> Result<u64, AuditError> {
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
    let s = scan::scan(bytes, from);
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
