//! The pure scanner of `audit.log` records: checks a run of records for framing,
//! checksum, hash chain and sequence numbers, and finds where a segment's chain starts.

use serde::Deserialize;

use super::record::{frame, hash, AuditRecord, BadReason, Cursor, HEADER_LEN, MAGIC};

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

/// Where the chain of a file starts: [`Cursor::START`] for the first segment of a chain,
/// else the `prev` hash and sequence number its first record carries (a later segment
/// continues the chain of the one before; `chain.rs` checks that they meet). A file too
/// short or damaged to tell starts at [`Cursor::START`], and its scan reports why.
pub fn start_of(bytes: &[u8]) -> Cursor {
    let Ok(f) = frame(bytes) else {
        return Cursor::START;
    };
    match serde_json::from_slice::<SeqOnly>(f.payload) {
        Ok(s) => Cursor {
            offset: 0,
            last_hash: f.prev,
            next_seq: s.seq,
        },
        Err(_) => Cursor::START,
    }
}

/// Scans a whole file from its own start ([`start_of`]).
pub fn scan_file(bytes: &[u8]) -> Scan {
    scan(bytes, start_of(bytes))
}

/// Decodes every good record of `bytes` (a whole file from offset 0), stopping at the
/// first bad one, which is returned alongside.
pub fn decode_all(bytes: &[u8]) -> (Vec<AuditRecord>, Option<Problem>) {
    let s = scan_file(bytes);
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
    use crate::audit::record::{encode, GENESIS};
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
