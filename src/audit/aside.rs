//! A damaged audit log is set aside, never deleted, and a new chain starts linked to it.
//!
//! When [`super::AuditLog::open`] finds damage before the tail (a bad checksum with good
//! records after it, a broken chain, a sequence gap), the file is renamed to
//! `audit.log.damaged-<time>` and a new `audit.log` is started whose first record,
//! `audit.chain_restarted`, names that file, its good record count, the SHA-256 of its
//! last good record and the first bad record ([`SetAside`]). Serve then raises a critical
//! alert and opens an `audit_log_damaged` incident ([`announce_set_aside`]).
//! [`super::verify_chain`] (`grace audit verify`) checks the new chain and, for every
//! `audit.chain_restarted` record in it, that the set-aside file is still there with
//! exactly the good records and last hash it names: its damage is reported, and any
//! change to it since is caught.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{io_err, AuditError};
use super::record;
use super::scan;
use super::verify::VerifyReport;

/// The kind of the first record of a chain started after a damaged log was set aside.
pub const CHAIN_RESTARTED: &str = "audit.chain_restarted";

/// A damaged log that was set aside: the data of the `audit.chain_restarted` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// Where the damaged log now is.
    pub previous_file: PathBuf,
    /// Its good records (those before the first bad one).
    pub previous_records: u64,
    /// SHA-256 (hex) of its last good record; zeros when it had none.
    pub previous_last_hash: String,
    /// The sequence number the first bad record should have had (its index).
    pub first_bad_seq: u64,
    /// The first bad record's byte offset.
    pub first_bad_offset: u64,
    /// What is wrong with it.
    pub reason: String,
    /// When it was set aside (RFC 3339).
    pub set_aside_at: String,
}

/// Sets the damaged log at `path` aside and starts a new chain at `path` whose first
/// record names it; with it, whether that record is written (`false`: another writer
/// created the new log first, the caller must append the record). `None` when there is
/// nothing to set aside any more (another process did it first, or the damage is only a
/// torn tail).
pub(super) fn set_aside(path: &Path) -> Result<Option<(SetAside, bool)>, AuditError> {
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(io_err(path))?;
    let mut guard = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io_err(path)(std::io::Error::from(e)))?;
    // Under the lock: still the file at `path`?
    let ino = guard.metadata().map_err(io_err(path))?.ino();
    if std::fs::metadata(path).map(|m| m.ino()).ok() != Some(ino) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    guard.read_to_end(&mut bytes).map_err(io_err(path))?;
    let s = scan::scan_file(&bytes);
    let Some(problem) = s.problem.filter(|p| !p.torn) else {
        return Ok(None);
    };
    let now = crate::time::now();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit.log".to_owned());
    let stem = format!("{name}.damaged-{}", crate::time::compact(now));
    let mut damaged = path.with_file_name(&stem);
    let mut n = 1;
    while damaged.exists() {
        n += 1;
        damaged = path.with_file_name(format!("{stem}-{n}"));
    }
    let aside = SetAside {
        previous_file: damaged.clone(),
        previous_records: s.records,
        previous_last_hash: hex::encode(s.cursor.last_hash),
        first_bad_seq: problem.seq,
        first_bad_offset: problem.offset,
        reason: problem.reason.to_string(),
        set_aside_at: crate::time::rfc3339(now),
    };
    std::fs::rename(path, &damaged).map_err(io_err(path))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let payload = serde_json::to_vec(&json!({
        "seq": 0, "at": aside.set_aside_at, "kind": CHAIN_RESTARTED, "data": aside,
    }))
    .map_err(|e| io_err(path)(e.into()))?;
    let frame = record::encode(&record::GENESIS, &payload);
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit.log.")
        .tempfile_in(dir)
        .map_err(io_err(path))?;
    tmp.write_all(&frame).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    let written = match tmp.persist_noclobber(path) {
        Ok(_) => true,
        Err(e) => {
            // Another writer started a log there in the meantime: the caller appends
            // the record after its records (the verifier looks for it anywhere).
            tracing::warn!(error = %e.error, "a new audit log appeared while the damaged one was set aside");
            false
        }
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))?;
    drop(guard);
    tracing::error!(
        damaged = %damaged.display(),
        first_bad_seq = problem.seq,
        first_bad_offset = problem.offset,
        reason = %problem.reason,
        good_records = s.records,
        "audit log damaged before its tail: set aside (kept) and a new chain started"
    );
    Ok(Some((aside, written)))
}

/// A set-aside log as the verifier finds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAsideCheck {
    /// What the `audit.chain_restarted` record says of it.
    pub recorded: SetAside,
    /// What the file holds now (`exists: false` when it is gone).
    pub report: VerifyReport,
    /// SHA-256 (hex) of its last good record now.
    pub last_hash: String,
}

impl SetAsideCheck {
    /// Whether the file is still there with exactly the good records, last hash and
    /// first bad record the new chain names.
    pub fn linked(&self) -> bool {
        self.report.exists
            && self.report.records == self.recorded.previous_records
            && self.last_hash == self.recorded.previous_last_hash
            && self
                .report
                .first_bad
                .as_ref()
                .is_some_and(|b| b.offset == self.recorded.first_bad_offset)
    }
}

impl fmt::Display for SetAsideCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.recorded;
        let path = self.report.path.display();
        if !self.report.exists {
            return write!(
                f,
                "MISSING: set-aside log {path} (named by the chain: {} good records, last \
                 hash {}) is gone; restore it from a backup",
                r.previous_records, r.previous_last_hash
            );
        }
        let damage = match &self.report.first_bad {
            Some(b) => format!("record #{} at byte {}: {}", b.seq, b.offset, b.reason),
            None => "no damage found any more".to_owned(),
        };
        if self.linked() {
            write!(
                f,
                "SET ASIDE: {path}: damaged at {damage}; {} good records before it, set \
                 aside {}. The new chain starts from its last good record (sha256 {}).",
                self.report.records, r.set_aside_at, r.previous_last_hash
            )
        } else {
            write!(
                f,
                "NOT LINKED: set-aside log {path} changed since it was set aside: the chain \
                 names {} good records, last hash {}, first bad byte {}; the file now has {} \
                 good records, last hash {}, {damage}",
                r.previous_records,
                r.previous_last_hash,
                r.first_bad_offset,
                self.report.records,
                self.last_hash
            )
        }
    }
}

/// When this serve's audit log was set aside at open: raises a critical alert and opens
/// an `audit_log_damaged` incident saying so. Call once the system is up.
pub fn announce_set_aside(system: &crate::tree::System) {
    let Some(a) = system.audit.set_aside() else {
        return;
    };
    let summary = format!(
        "audit log damaged at record #{} (byte {}: {}); set aside as {} and a new chain \
         started from its last good record",
        a.first_bad_seq,
        a.first_bad_offset,
        a.reason,
        a.previous_file.display()
    );
    let details = json!(a);
    if let Err(e) = crate::alerts::raise(
        &system.paths,
        &system.config.alerts,
        crate::alerts::Severity::Critical,
        "audit.log_damaged",
        &summary,
        details.clone(),
    ) {
        tracing::error!(error = %e, "cannot raise the alert of the damaged audit log");
    }
    let draft = crate::incident::IncidentDraft {
        trigger: "audit_integrity".to_owned(),
        component: "audit_log".to_owned(),
        failure_mode: "audit_log_damaged".to_owned(),
        severity: crate::incident::Severity::Critical,
        playbook: None,
        summary,
        details,
        detected_at: Some(a.set_aside_at.clone()),
    };
    if let Err(e) = system.incidents.open(draft) {
        tracing::error!(error = %e, "cannot open the incident of the damaged audit log");
    }
}
