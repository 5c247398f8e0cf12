//! The on-disk record format of `audit.log` and the pure scanner that checks a run of
//! records: framing, checksum, hash chain and sequence numbers.
//!
//! A record is
//!
//! ```text
//! magic "GAL1" | len: u32 LE | crc32: u32 LE | prev: [u8; 32] | payload: len bytes
//! ```
//!
//! where `crc32` covers magic, len, prev and payload; `prev` is the SHA-256 of the whole
//! previous record (all zeros for the first); and `payload` is the JSON object
//! `{seq, at, kind, data}`.

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
struct Frame<'a> {
    prev: [u8; 32],
    payload: &'a [u8],
    whole: &'a [u8],
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Decodes the framing at the start of `bytes` and checks its checksum.
fn frame(bytes: &[u8]) -> Result<Frame<'_>, BadReason> {
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

/// The first bad record a scan met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The sequence number the bad record should have had.
    pub seq: u64,
    /// Its byte offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub reason: BadReason,
    /// Whether it is a torn tail: damage a crash mid-write explains, with no good record
    /// after it. A torn tail is cut at open; anything else refuses.
    pub torn: bool,
}

/// The result of scanning a run of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// After the last good record.
    pub cursor: Cursor,
    /// Good records seen.
    pub records: u64,
    /// The first bad record, if any.
    pub problem: Option<Problem>,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// Scans `bytes`, which start at file offset `from.offset`, checking every record against
/// the chain state in `from`. Stops at the first bad record.
pub fn scan(bytes: &[u8], from: Cursor) -> Scan {
    let mut cur = from;
    let mut pos = 0usize;
    let mut records = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let checked = frame(rest).and_then(|f| {
            if f.prev != cur.last_hash {
                return Err(BadReason::Chain);
            }
            let s: SeqOnly =
                serde_json::from_slice(f.payload).map_err(|e| BadReason::Payload(e.to_string()))?;
            if s.seq != cur.next_seq {
                return Err(BadReason::Sequence {
                    expected: cur.next_seq,
                    found: s.seq,
                });
            }
            Ok(f)
        });
        match checked {
            Ok(f) => {
                pos += f.whole.len();
                cur = Cursor {
                    offset: cur.offset + f.whole.len() as u64,
                    last_hash: hash(f.whole),
                    next_seq: cur.next_seq + 1,
                };
                records += 1;
            }
            Err(reason) => {
                let torn = reason.may_be_torn() && !good_frame_after(bytes, pos + 1);
                return Scan {
                    cursor: cur,
                    records,
                    problem: Some(Problem {
                        seq: cur.next_seq,
                        offset: cur.offset,
                        reason,
                        torn,
                    }),
                };
            }
        }
    }
    Scan {
        cursor: cur,
        records,
        problem: None,
    }
}

/// Whether a record with good framing and checksum starts anywhere at or after `from`
/// (a damaged record followed by good ones is corruption in the middle, not a tail).
fn good_frame_after(bytes: &[u8], from: usize) -> bool {
    let mut i = from;
    while i + HEADER_LEN <= bytes.len() {
        match bytes[i..].windows(4).position(|w| w == MAGIC) {
            Some(p) => {
                if frame(&bytes[i + p..]).is_ok() {
                    return true;
                }
                i += p + 1;
            }
            None => return false,
        }
    }
    false
}

/// Decodes every good record of `bytes` (a whole log from offset 0), stopping at the
/// first bad one, which is returned alongside.
pub fn decode_all(bytes: &[u8]) -> (Vec<AuditRecord>, Option<Problem>) {
    let s = scan(bytes, Cursor::START);
    let mut out = Vec::with_capacity(s.records as usize);
    let mut pos = 0usize;
    for _ in 0..s.records {
        let Ok(f) = frame(&bytes[pos..]) else { break };
        if let Ok(r) = serde_json::from_slice::<AuditRecord>(f.payload) {
            out.push(r);
        }
        pos += f.whole.len();
    }
    (out, s.problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS;
        for seq in 0..n {
            let p = serde_json::to_vec(&AuditRecord {
                seq,
                at: "2025-01-01T00:00:00.000000Z".into(),
                kind: "test".into(),
                data: serde_json::json!({ "n": seq }),
            })
            .expect("json");
            let f = encode(&prev, &p);
            prev = hash(&f);
            out.extend_from_slice(&f);
        }
        out
    }

    #[test]
    fn a_clean_log_scans_without_problem() {
        let b = log(5);
        let s = scan(&b, Cursor::START);
        assert_eq!(s.records, 5);
        assert_eq!(s.cursor.offset, b.len() as u64);
        assert_eq!(s.problem, None);
        assert_eq!(decode_all(&b).0.len(), 5);
    }

    #[test]
    fn a_complete_record_with_a_wrong_prev_is_never_torn() {
        let mut b = log(2);
        let extra = encode(&[7; 32], br#"{"seq":2,"at":"","kind":"x","data":null}"#);
        b.extend_from_slice(&extra);
        let p = scan(&b, Cursor::START).problem.expect("problem");
        assert_eq!((p.seq, p.reason, p.torn), (2, BadReason::Chain, false));
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let mut b = log(3);
        let good = b.len() as u64;
        b.extend_from_slice(&[0; 100]);
        let p = scan(&b, Cursor::START).problem.expect("problem");
        assert!(p.torn);
        assert_eq!(p.offset, good);
    }

    proptest! {
        #[test]
        fn any_cut_inside_the_last_record_is_a_torn_tail(cut in 1usize..60) {
            let b = log(4);
            let last_start = log(3).len();
            let end = b.len() - cut.min(b.len() - last_start - 1);
            let s = scan(&b[..end], Cursor::START);
            prop_assert_eq!(s.records, 3);
            let p = s.problem.expect("problem");
            prop_assert!(p.torn);
            prop_assert_eq!(p.offset, last_start as u64);
            prop_assert_eq!(p.seq, 3);
        }

        #[test]
        fn a_flipped_byte_before_the_last_record_is_corruption(at in 0usize..1000, bit in 0u8..8) {
            let b = log(6);
            let last_start = log(5).len();
            let at = at % last_start;
            let mut bad = b.clone();
            bad[at] ^= 1 << bit;
            let p = scan(&bad, Cursor::START).problem.expect("problem");
            prop_assert!(!p.torn, "{:?}", p);
            prop_assert!(p.offset <= at as u64);
        }
    }
}
