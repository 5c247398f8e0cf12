//! The audit log through its public interface on real files: the hash chain round trip,
//! torn-tail repair at open, a damaged log set aside and a linked chain, several writers, group commit.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use grace::audit::{read_all, verify, verify_chain, AuditConfig, AuditLog, FsyncPolicy};
use serde_json::json;

fn config(fsync: FsyncPolicy) -> AuditConfig {
    AuditConfig {
        fsync,
        group_interval: Duration::from_millis(5),
        ..AuditConfig::default()
    }
}

fn fill(log: &AuditLog, n: u64) {
    for i in 0..n {
        let seq = log
            .append(
                "test.record",
                json!({ "i": i, "text": "naïve \u{0}\n\"quoted\" ✓" }),
            )
            .expect("append");
        assert_eq!(seq, i);
    }
}

fn record_offsets(path: &Path) -> Vec<u64> {
    // Offsets follow from the payload sizes: header (44 bytes) + payload.
    let bytes = std::fs::read(path).expect("read");
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 44 <= bytes.len() {
        out.push(pos as u64);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4")) as usize;
        pos += 44 + len;
    }
    out
}

#[test]
fn records_round_trip_through_the_hash_chain() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    {
        let log = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("open");
        fill(&log, 20);
        log.sync().expect("sync");
    }
    let records = read_all(&path).expect("read");
    assert_eq!(records.len(), 20);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.kind, "test.record");
        assert_eq!(r.data["i"], json!(i));
        assert_eq!(r.data["text"], json!("naïve \u{0}\n\"quoted\" ✓"));
    }
    let report = verify(&path).expect("verify");
    assert!(report.ok(), "{report}");
    assert_eq!(report.records, 20);

    // Reopening continues the same chain.
    let log = AuditLog::open(&path, &config(FsyncPolicy::Always)).expect("reopen");
    assert_eq!(log.len(), 20);
    assert_eq!(log.append("after.reopen", json!(null)).expect("append"), 20);
    assert!(verify(&path).expect("verify").ok());
}

#[test]
fn a_torn_tail_is_cut_at_open_and_appends_continue_the_chain() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    {
        let log = AuditLog::open(&path, &config(FsyncPolicy::Always)).expect("open");
        fill(&log, 5);
    }
    let offsets = record_offsets(&path);
    let last = offsets[4];
    let len = std::fs::metadata(&path).expect("meta").len();
    // A crash in the middle of writing record #4.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(last + (len - last) / 2)
        .expect("truncate");
    let report = verify(&path).expect("verify");
    let bad = report.first_bad.clone().expect("torn tail reported");
    assert!(bad.torn_tail, "{report}");
    assert_eq!((bad.seq, bad.offset), (4, last));

    let log = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("open repairs");
    // Records 0..4 kept, then the record of the cut.
    assert_eq!(log.len(), 5);
    log.append("after.repair", json!({ "ok": true }))
        .expect("append");
    log.sync().expect("sync");
    let records = read_all(&path).expect("chain valid after repair");
    let kinds: Vec<_> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "test.record",
            "test.record",
            "test.record",
            "test.record",
            "audit.torn_tail_cut",
            "after.repair"
        ]
    );
    assert_eq!(records[4].data["offset"], json!(last));
    let saved = records[4].data["saved_to"].as_str().expect("saved_to");
    assert_eq!(
        std::fs::metadata(saved).expect("cut bytes kept").len(),
        (len - last) / 2
    );
    assert!(verify(&path).expect("verify").ok());
}

#[test]
fn a_flipped_byte_in_the_middle_is_set_aside_and_a_linked_chain_starts() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    {
        let log = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("open");
        fill(&log, 10);
    }
    let offsets = record_offsets(&path);
    let mut bytes = std::fs::read(&path).expect("read");
    let at = offsets[3] as usize + 60; // inside record #3's payload
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");

    let report = verify(&path).expect("verify");
    let bad = report.first_bad.clone().expect("bad record");
    assert_eq!((bad.seq, bad.offset, bad.torn_tail), (3, offsets[3], false));
    assert!(bad.reason.contains("checksum"), "{report}");
    assert_eq!(report.records, 3);
    assert!(report.to_string().contains("record #3"));
    assert!(
        report.to_string().contains("sets the file aside"),
        "{report}"
    );

    let log = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("opens all the same");
    let aside = log.set_aside().expect("set aside").clone();
    assert_eq!(
        (aside.first_bad_seq, aside.first_bad_offset),
        (3, offsets[3])
    );
    assert_eq!(aside.previous_records, 3);
    let last_good = &bytes[offsets[2] as usize..offsets[3] as usize];
    use sha2::Digest;
    assert_eq!(
        aside.previous_last_hash,
        hex::encode(sha2::Sha256::digest(last_good))
    );
    // Kept, byte for byte, beside the new log.
    assert_eq!(aside.previous_file.parent(), Some(d.path()));
    let name = aside
        .previous_file
        .file_name()
        .expect("name")
        .to_string_lossy();
    assert!(name.starts_with("audit.log.damaged-"), "{name}");
    assert_eq!(std::fs::read(&aside.previous_file).expect("kept"), bytes);

    log.append("after.restart", json!({})).expect("append");
    log.sync().expect("sync");
    let records = read_all(&path).expect("the new chain is intact");
    let kinds: Vec<_> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["audit.chain_restarted", "after.restart"]);
    assert_eq!(records[0].seq, 0);
    assert_eq!(
        records[0].data["previous_file"],
        json!(aside.previous_file.display().to_string())
    );
    assert_eq!(records[0].data["first_bad_seq"], json!(3));
    drop(log);

    let chain = verify_chain(&path).expect("verify chain");
    assert!(chain.ok(), "{chain}");
    assert_eq!(chain.set_aside.len(), 1);
    assert!(chain.set_aside[0].linked());
    let text = chain.to_string();
    assert!(
        text.contains("OK: ") && text.contains("SET ASIDE: "),
        "{text}"
    );
    assert!(text.contains("record #3"), "{text}");

    // A reopen finds an intact chain: nothing more is set aside.
    let again = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("reopen");
    assert!(again.set_aside().is_none());
    assert_eq!(again.len(), 2);
}

#[test]
fn a_rewritten_record_with_a_fresh_checksum_breaks_the_chain() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    let other = d.path().join("other.log");
    {
        let a = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("open");
        fill(&a, 4);
        let b = AuditLog::open(&other, &config(FsyncPolicy::Group)).expect("open");
        fill(&b, 4);
    }
    // Splice record #2 of another log (valid framing and checksum) into this one.
    let (pa, pb) = (record_offsets(&path), record_offsets(&other));
    let a = std::fs::read(&path).expect("read");
    let b = std::fs::read(&other).expect("read");
    let mut spliced = a[..pa[2] as usize].to_vec();
    spliced.extend_from_slice(&b[pb[2] as usize..pb[3] as usize]);
    spliced.extend_from_slice(&a[pa[3] as usize..]);
    std::fs::write(&path, &spliced).expect("write");
    let report = verify(&path).expect("verify");
    let bad = report.first_bad.expect("bad");
    assert_eq!(bad.seq, 2);
    assert!(bad.reason.contains("chain"), "{}", bad.reason);
    assert!(!bad.torn_tail);
}

#[test]
fn two_writers_on_one_file_extend_one_chain() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    // Two independent opens behave like two processes (separate file descriptions).
    let a = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("a");
    let b = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("b");
    for i in 0..10u64 {
        assert_eq!(a.append("from.a", json!(i)).expect("a"), 2 * i);
        assert_eq!(b.append("from.b", json!(i)).expect("b"), 2 * i + 1);
    }
    let records = read_all(&path).expect("read");
    assert_eq!(records.len(), 20);
    assert!(verify(&path).expect("verify").ok());
}

#[test]
fn a_torn_record_left_by_another_writer_is_cut_before_the_next_append() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    let log = AuditLog::open(&path, &config(FsyncPolicy::Group)).expect("open");
    fill(&log, 3);
    // Another writer died after writing half a header.
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(b"GAL1\x10\x00").expect("write");
    drop(f);
    assert_eq!(
        log.append("next", json!(1)).expect("append"),
        4,
        "after the record of the cut"
    );
    let records = read_all(&path).expect("valid");
    assert_eq!(records[3].kind, "audit.torn_tail_cut");
    assert_eq!(records[4].kind, "next");
}

#[test]
fn concurrent_durable_appends_get_unique_contiguous_sequence_numbers() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    for policy in [FsyncPolicy::Always, FsyncPolicy::Group] {
        let _ = std::fs::remove_file(&path);
        let log = Arc::new(AuditLog::open(&path, &config(policy)).expect("open"));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            log.append_durable("t", json!({ "t": t, "i": i }))
                                .expect("append")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("join"))
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
        assert!(log.fsyncs() >= 1 && log.fsyncs() <= 100, "{}", log.fsyncs());
        assert!(verify(&path).expect("verify").ok());
    }
}
