//! Segments: the audit log is closed once it passes `[audit] max_segment_size` and the
//! chain goes on in a new file.
//!
//! The closed file moves to `audit/<YYYYmmdd_HHMMSS>-<next seq>.log` beside the log
//! (names sort in chain order), and the new `audit.log` starts with an
//! `audit.segment_started` record whose `prev` is the hash of the closed segment's last
//! record and whose sequence number follows it; its data names the closed segment and
//! that hash ([`SegmentStart`]). The chain is thus one chain across files:
//! [`super::verify_chain`] walks it back from `audit.log` through every segment, so a
//! changed record in an old segment and a missing segment are both found.
//!
//! The switch is crash-safe: the new file is written in full and fsynced under a
//! temporary name before the old one moves, and renamed into place after. A crash
//! between the two renames leaves no `audit.log` but the closed segment: the next open
//! resumes the chain from the newest segment (reason `resumed`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{io_err, AuditError};
use super::record::{self, Cursor};
use super::scan;

/// The kind of the first record of every segment after the first.
pub const SEGMENT_STARTED: &str = "audit.segment_started";

/// The data of an `audit.segment_started` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentStart {
    /// The segment closed before this one, relative to the log's directory
    /// (`audit/20261207_120000-000000052311.log`).
    pub previous_segment: String,
    /// SHA-256 (hex) of its last record: this record's `prev`.
    pub previous_last_hash: String,
    /// The sequence number this record has: the one after its last record.
    pub next_seq: u64,
    /// `size` (the log passed `max_segment_size`) or `resumed` (`audit.log` was
    /// missing beside closed segments: a switch cut short by a crash, or a deletion).
    pub reason: String,
}

/// The directory of the closed segments of the log at `path`: `audit/` for `audit.log`.
pub fn segments_dir(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".to_owned());
    path.with_file_name(stem)
}

/// The closed segments of the log at `path`, oldest first.
pub fn segments(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(segments_dir(path))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Which segment the new file follows.
pub(super) enum Closing {
    /// The full log at `path`: it moves under `audit/`.
    Full,
    /// The newest segment, there already (no log at `path`: a switch cut short).
    Resumed(PathBuf),
}

/// Starts the next segment of the log at `path` after `closing`, whose records end at
/// `end` (the caller holds the lock and has fsynced it). Returns the new file and its
/// cursor.
pub(super) fn start_next(
    path: &Path,
    end: Cursor,
    closing: Closing,
) -> Result<(File, Cursor), AuditError> {
    let err = io_err(path);
    let dir = segments_dir(path);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let base = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (name, reason) = match &closing {
        Closing::Full => {
            let stem = format!(
                "{}-{:012}",
                crate::time::compact(crate::time::now()),
                end.next_seq
            );
            let mut name = format!("{stem}.log");
            let mut n = 1;
            while dir.join(&name).exists() {
                n += 1;
                name = format!("{stem}-{n}.log");
            }
            (name, "size")
        }
        Closing::Resumed(newest) => (
            newest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "resumed",
        ),
    };
    let dir_name = dir
        .file_name()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let start = SegmentStart {
        previous_segment: format!("{dir_name}/{name}"),
        previous_last_hash: hex::encode(end.last_hash),
        next_seq: end.next_seq,
        reason: reason.to_owned(),
    };
    let payload = serde_json::to_vec(&json!({
        "seq": end.next_seq,
        "at": crate::time::rfc3339(crate::time::now()),
        "kind": SEGMENT_STARTED,
        "data": start,
    }))
    .map_err(|e| io_err(path)(e.into()))?;
    let frame = record::encode(&end.last_hash, &payload);
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit.log.")
        .tempfile_in(base)
        .map_err(io_err(path))?;
    tmp.write_all(&frame).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    match closing {
        Closing::Full => {
            std::fs::rename(path, dir.join(&name)).map_err(io_err(path))?;
            sync_dir(&dir).map_err(io_err(&dir))?;
            tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
        }
        // Another process may have resumed the chain meanwhile: theirs stands.
        Closing::Resumed(_) => {
            tmp.persist_noclobber(path)
                .map_err(|e| io_err(path)(e.error))?;
        }
    }
    sync_dir(base).map_err(err)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let cursor = Cursor {
        offset: frame.len() as u64,
        last_hash: record::hash(&frame),
        next_seq: end.next_seq + 1,
    };
    tracing::info!(
        segment = %dir.join(&name).display(),
        next_seq = end.next_seq,
        reason,
        "audit log: segment closed, the chain goes on in a new file"
    );
    Ok((file, cursor))
}

/// Opens the log at `path` for appending, creating it. When it is missing but closed
/// segments exist, a switch was cut short (or the file deleted): the chain resumes from
/// the end of the newest segment instead of starting over.
pub(super) fn open_active(path: &Path) -> Result<File, AuditError> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path))
    };
    if path.exists() {
        return open();
    }
    let Some(newest) = segments(path).pop() else {
        return open();
    };
    let bytes = super::verify::read_shared(&newest)
        .map_err(io_err(&newest))?
        .unwrap_or_default();
    let end = scan::scan_file(&bytes).cursor;
    match start_next(path, end, Closing::Resumed(newest)) {
        Ok((file, _)) => Ok(file),
        // Another process resumed it first.
        Err(_) if path.exists() => open(),
        Err(e) => Err(e),
    }
}
