//! The on-disk record format of `audit.log`: framing, checksum, and the hash that links
//! each record to the one before.
//!
//! A record is
//!
//! ```text
//! magic "GAL1" | len: u32 LE | crc32: u32 LE | prev: [u8; 32] | payload: len bytes
//! ```
//!
//! where `crc32` covers magic, len, prev and payload; `prev` is the SHA-256 of the whole
//! previous record (all zeros for the first); and `payload` is the JSON object
//! `{seq, at, kind, data}`. The scanner that checks a run of records is in `scan.rs`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The four bytes that open every record.
pub const MAGIC: [u8; 4] = *b"GAL1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 4 + 4 + 4 + 32;
/// The largest payload accepted (a record claiming more is corrupt).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// The `prev` hash of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// One audit record's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number, from 0, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339, microseconds).
    pub at: String,
    /// What happened (`incident.opened`, `kernel.restart`, `kill_switch`, ...).
    pub kind: String,
    /// The details.
    pub data: serde_json::Value,
}

/// Why a record is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReason {
    /// The file ends inside the record.
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// The record does not start with the magic bytes.
    BadMagic,
    /// The length field is beyond [`MAX_PAYLOAD`].
    TooLarge(u64),
    /// The checksum does not match the bytes.
    Checksum {
        /// Stored in the record.
        stored: u32,
        /// Computed from its bytes.
        computed: u32,
    },
    /// The record's `prev` is not the hash of the record before it.
    Chain,
    /// The payload is not the expected JSON.
    Payload(String),
    /// The sequence number is not the previous one plus one.
    Sequence {
        /// Expected.
        expected: u64,
        /// Found.
        found: u64,
    },
}

impl BadReason {
    /// Whether the damage could come from a write cut short by a crash (as opposed to a
    /// complete record that does not belong, which only tampering or a bug produces).
    pub fn may_be_torn(&self) -> bool {
        matches!(
            self,
            BadReason::Truncated { .. }
                | BadReason::BadMagic
                | BadReason::TooLarge(_)
                | BadReason::Checksum { .. }
        )
    }
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadReason::Truncated { needed, available } => write!(
                f,
                "truncated: needs {needed} bytes, the file has {available} left"
            ),
            BadReason::BadMagic => f.write_str("no record header (bad magic bytes)"),
            BadReason::TooLarge(n) => write!(f, "length field {n} is beyond the maximum"),
            BadReason::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ),
            BadReason::Chain => {
                f.write_str("hash chain broken: prev is not the hash of the record before")
            }
            BadReason::Payload(e) => write!(f, "payload is not a valid record: {e}"),
            BadReason::Sequence { expected, found } => {
                write!(f, "sequence number {found}, expected {expected}")
            }
        }
    }
}

/// The SHA-256 of a whole record (what the next record's `prev` holds).
pub fn hash(frame: &[u8]) -> [u8; 32] {
    Sha256::digest(frame).into()
}

fn checksum(len: &[u8], prev: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&MAGIC);
    h.update(len);
    h.update(prev);
    h.update(payload);
    h.finalize()
}

/// Frames `payload` as a record following the record whose hash is `prev`.
pub fn encode(prev: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = checksum(&len, prev, payload).to_le_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc);
    out.extend_from_slice(prev);
    out.extend_from_slice(payload);
    out
}

/// A record whose framing and checksum are good.
pub(super) struct Frame<'a> {
    /// The hash of the record before it.
    pub prev: [u8; 32],
    /// Its payload.
    pub payload: &'a [u8],
    /// The whole record.
    pub whole: &'a [u8],
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Decodes the framing at the start of `bytes` and checks its checksum.
pub(super) fn frame(bytes: &[u8]) -> Result<Frame<'_>, BadReason> {
    if bytes.len() < HEADER_LEN {
        if !bytes.starts_with(&MAGIC[..bytes.len().min(4)]) {
            return Err(BadReason::BadMagic);
        }
        return Err(BadReason::Truncated {
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    }
    if bytes[..4] != MAGIC {
        return Err(BadReason::BadMagic);
    }
    let len = le32(&bytes[4..8]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BadReason::TooLarge(len as u64));
    }
    let total = HEADER_LEN + len;
    if bytes.len() < total {
        return Err(BadReason::Truncated {
            needed: total as u64,
            available: bytes.len() as u64,
        });
    }
    let stored = le32(&bytes[8..12]);
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&bytes[12..HEADER_LEN]);
    let payload = &bytes[HEADER_LEN..total];
    let computed = checksum(&bytes[4..8], &prev, payload);
    if stored != computed {
        return Err(BadReason::Checksum { stored, computed });
    }
    Ok(Frame {
        prev,
        payload,
        whole: &bytes[..total],
    })
}

/// Where a scan stands: after the last good record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Byte offset just past the last good record.
    pub offset: u64,
    /// Hash of the last good record ([`GENESIS`] before the first).
    pub last_hash: [u8; 32],
    /// The sequence number the next record must have.
    pub next_seq: u64,
}

impl Cursor {
    /// The cursor at the start of an empty log.
    pub const START: Cursor = Cursor {
        offset: 0,
        last_hash: GENESIS,
        next_seq: 0,
    };
}
