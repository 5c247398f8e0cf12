//! `grace audit verify` across files: the log in use, every closed segment before it,
//! and every damaged log set aside.
//!
//! From `audit.log` the verifier walks back: a file whose first record is
//! `audit.segment_started` continues the segment that record names, which must exist,
//! be intact, and end with exactly the record (hash and sequence number) the next one
//! continues from; the walk stops at the file that starts the chain (its first record
//! follows no other). A file whose first record neither starts a chain nor continues a
//! segment has lost the records before it. Every `audit.chain_restarted` record met on
//! the way names a set-aside log, checked as `aside.rs` says, and walked back in turn.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::aside::{SetAside, SetAsideCheck, CHAIN_RESTARTED};
use super::error::{io_err, AuditError};
use super::record::Cursor;
use super::scan;
use super::segment::{SegmentStart, SEGMENT_STARTED};
use super::verify::{read_shared, verify, VerifyReport};

/// A closed segment as the verifier finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentCheck {
    /// What the file holds (`exists: false` when it is gone).
    pub report: VerifyReport,
    /// SHA-256 (hex) of the record the next segment continues from.
    pub expected_last_hash: String,
    /// The sequence number the next segment continues with.
    pub expected_next_seq: u64,
    /// SHA-256 (hex) of the file's last good record now.
    pub last_hash: String,
    /// The sequence number after the file's last good record now.
    pub next_seq: u64,
}

impl SegmentCheck {
    /// Whether the segment is there, intact, and ends where the next one continues.
    pub fn linked(&self) -> bool {
        self.report.exists
            && self.report.ok()
            && self.last_hash == self.expected_last_hash
            && self.next_seq == self.expected_next_seq
    }
}

impl fmt::Display for SegmentCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.report.path.display();
        let last = self.expected_next_seq.saturating_sub(1);
        if !self.report.exists {
            return write!(
                f,
                "MISSING: segment {path} is gone (the next segment continues from its record \
                 #{last}, sha256 {}); restore it from a backup",
                self.expected_last_hash
            );
        }
        if !self.report.ok() {
            return write!(f, "{}", self.report);
        }
        if self.linked() {
            write!(
                f,
                "OK: segment {path}: {} records, hash chain intact, continued by the next",
                self.report.records
            )
        } else {
            write!(
                f,
                "NOT LINKED: segment {path} ends at record #{} (sha256 {}), but the next \
                 segment continues from record #{last} (sha256 {}): records were changed, \
                 removed or added",
                self.next_seq.saturating_sub(1),
                self.last_hash,
                self.expected_last_hash
            )
        }
    }
}

/// What `grace audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The log in use.
    pub current: VerifyReport,
    /// The closed segments, newest first (those of set-aside logs included).
    pub segments: Vec<SegmentCheck>,
    /// Files whose first record neither starts a chain nor continues a segment.
    pub unrooted: Vec<String>,
    /// The logs set aside, newest first.
    pub set_aside: Vec<SetAsideCheck>,
}

impl ChainReport {
    /// Whether the log in use is intact, every segment before it is there, intact and
    /// linked, and every set-aside log is as recorded.
    pub fn ok(&self) -> bool {
        self.current.ok()
            && self.segments.iter().all(SegmentCheck::linked)
            && self.unrooted.is_empty()
            && self.set_aside.iter().all(SetAsideCheck::linked)
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.current)?;
        for s in &self.segments {
            write!(f, "\n{s}")?;
        }
        for u in &self.unrooted {
            write!(f, "\nBAD: {u}")?;
        }
        for c in &self.set_aside {
            write!(f, "\n{c}")?;
        }
        Ok(())
    }
}

/// Walks back from `file` through the segments it continues, adding them to `out` and
/// the set-aside logs their records name to `restarts`.
fn walk_back(
    log: &Path,
    mut file: PathBuf,
    out: &mut ChainReport,
    restarts: &mut Vec<SetAside>,
) -> Result<(), AuditError> {
    let base = log.parent().unwrap_or(Path::new("."));
    let mut seen = vec![file.clone()];
    loop {
        let bytes = read_shared(&file)
            .map_err(io_err(&file))?
            .unwrap_or_default();
        let (records, _) = scan::decode_all(&bytes);
        restarts.extend(
            records
                .iter()
                .filter(|r| r.kind == CHAIN_RESTARTED)
                .filter_map(|r| serde_json::from_value(r.data.clone()).ok()),
        );
        let start = scan::start_of(&bytes);
        if bytes.is_empty() || start == Cursor::START {
            return Ok(());
        }
        let segment_start = records
            .first()
            .filter(|r| r.kind == SEGMENT_STARTED)
            .and_then(|r| serde_json::from_value::<SegmentStart>(r.data.clone()).ok());
        let Some(seg) = segment_start else {
            out.unrooted.push(format!(
                "{}: its first record #{} neither starts a chain nor continues a segment: \
                 the records before it are missing",
                file.display(),
                start.next_seq
            ));
            return Ok(());
        };
        let prev = base.join(&seg.previous_segment);
        if seen.contains(&prev) {
            return Ok(());
        }
        seen.push(prev.clone());
        let report = verify(&prev)?;
        let end = read_shared(&prev)
            .map_err(io_err(&prev))?
            .map(|b| scan::scan_file(&b).cursor);
        let exists = report.exists;
        out.segments.push(SegmentCheck {
            report,
            expected_last_hash: hex::encode(start.last_hash),
            expected_next_seq: start.next_seq,
            last_hash: end.map(|c| hex::encode(c.last_hash)).unwrap_or_default(),
            next_seq: end.map_or(0, |c| c.next_seq),
        });
        if !exists {
            return Ok(());
        }
        file = prev;
    }
}

/// Checks the log at `path`, every closed segment before it, and every log set aside
/// (the `audit.chain_restarted` records, followed back through the set-aside files and
/// their own segments).
pub fn verify_chain(path: &Path) -> Result<ChainReport, AuditError> {
    let mut report = ChainReport {
        current: verify(path)?,
        segments: Vec::new(),
        unrooted: Vec::new(),
        set_aside: Vec::new(),
    };
    let mut todo = Vec::new();
    walk_back(path, path.to_path_buf(), &mut report, &mut todo)?;
    todo.reverse();
    let mut seen = Vec::new();
    while let Some(recorded) = todo.pop() {
        // A state directory moved since: the file is beside the log.
        let mut file = recorded.previous_file.clone();
        if !file.exists() {
            if let Some(n) = recorded.previous_file.file_name() {
                file = path.with_file_name(n);
            }
        }
        if seen.contains(&file) {
            continue;
        }
        seen.push(file.clone());
        let checked = verify(&file)?;
        let bytes = read_shared(&file)
            .map_err(io_err(&file))?
            .unwrap_or_default();
        let last_hash = hex::encode(scan::scan_file(&bytes).cursor.last_hash);
        if checked.exists {
            let mut earlier = Vec::new();
            walk_back(path, file.clone(), &mut report, &mut earlier)?;
            earlier.reverse();
            todo.extend(earlier);
        }
        report.set_aside.push(SetAsideCheck {
            recorded,
            report: checked,
            last_hash,
        });
    }
    Ok(report)
}
