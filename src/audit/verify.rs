//! `grace audit verify`: checks the whole hash chain of a log and names the first bad
//! record.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use super::error::{io_err, AuditError};
use super::record::AuditRecord;
use super::scan;

/// The first bad record of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRecord {
    /// The sequence number it should have had.
    pub seq: u64,
    /// Its byte offset in the file.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
    /// Whether it is a torn tail (a write cut short by a crash, with nothing good after
    /// it), which `grace serve` cuts at start-up; anything else is corruption.
    pub torn_tail: bool,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The file.
    pub path: PathBuf,
    /// Whether the file exists.
    pub exists: bool,
    /// Good records before the first bad one (all of them when the log is intact).
    pub records: u64,
    /// Size of the file.
    pub bytes: u64,
    /// The first bad record, if any.
    pub first_bad: Option<BadRecord>,
}

impl VerifyReport {
    /// Whether every record is good.
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.first_bad {
            None if !self.exists => write!(f, "OK: no audit log at {path} yet (0 records)"),
            None => write!(
                f,
                "OK: {path}: {} records, {} bytes, hash chain intact",
                self.records, self.bytes
            ),
            Some(b) => {
                write!(
                    f,
                    "BAD: {path}: record #{} at byte {}: {} ({} good records before it)",
                    b.seq, b.offset, b.reason, self.records
                )?;
                if b.torn_tail {
                    write!(
                        f,
                        "\nThis is a torn tail: a write cut short by a crash, with nothing \
                         after it. `grace serve` cuts it at start-up and keeps the cut bytes \
                         in {path}.torn-*; every record before it is intact."
                    )
                } else {
                    write!(
                        f,
                        "\nThe records from there on cannot be trusted. `grace serve` sets \
                         the file aside at start-up ({path}.damaged-<time>, kept for \
                         investigation) and starts a new chain linked to its last good record."
                    )
                }
            }
        }
    }
}

/// Reads the whole file under a shared lock (so no append is half-seen); None if it
/// does not exist.
pub(crate) fn read_shared(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut guard = Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| io::Error::from(e))?;
    let mut bytes = Vec::new();
    guard.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Checks every record of the log at `path`: framing, checksum, hash chain and
/// sequence numbers. A missing file is an empty, intact log.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    let bytes = read_shared(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(bytes) = bytes else {
        return Ok(VerifyReport {
            path: path.to_path_buf(),
            exists: false,
            records: 0,
            bytes: 0,
            first_bad: None,
        });
    };
    let s = scan::scan_file(&bytes);
    Ok(VerifyReport {
        path: path.to_path_buf(),
        exists: true,
        records: s.records,
        bytes: bytes.len() as u64,
        first_bad: s.problem.map(|p| BadRecord {
            seq: p.seq,
            offset: p.offset,
            reason: p.reason.to_string(),
            torn_tail: p.torn,
        }),
    })
}

/// Reads every record of the file at `path` (none if it does not exist). Fails at the
/// first bad record, torn tail included.
pub fn read_all(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let bytes = match read_shared(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let (records, problem) = scan::decode_all(&bytes);
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
