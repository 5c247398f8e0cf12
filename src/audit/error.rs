//! The audit log's error type.

use std::io;
use std::path::{Path, PathBuf};

use super::record::MAX_PAYLOAD;

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

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}
