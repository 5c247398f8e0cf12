//! Audit log segments on real files: a full log is closed under `audit/` and the chain
//! goes on in a new file; `verify_chain` (and `grace audit verify`) walks every
//! segment, and finds a changed record in an old segment and a missing segment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use grace::audit::{
    read_all, segments, verify_chain, AuditConfig, AuditLog, AuditRecord, FsyncPolicy,
    SEGMENT_STARTED,
};
use grace::config::ByteSize;
use serde_json::json;

fn config() -> AuditConfig {
    AuditConfig {
        fsync: FsyncPolicy::Group,
        group_interval: Duration::from_millis(5),
        max_segment_size: ByteSize(2_000),
    }
}

/// A state directory whose audit log holds `n` appended records, in several segments.
fn segmented(n: u64) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    let log = AuditLog::open(&path, &config()).expect("open");
    for i in 0..n {
        log.append("test.record", json!({ "i": i, "pad": "x".repeat(100) }))
            .expect("append");
    }
    log.sync().expect("sync");
    (d, path)
}

/// Every record of every segment then of the log, in chain order.
fn all_records(path: &Path) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    for s in segments(path) {
        out.extend(read_all(&s).expect("segment reads"));
    }
    out.extend(read_all(path).expect("log reads"));
    out
}

/// Where each record of the file starts (a header of 44 bytes, then the payload).
fn frame_offsets(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).expect("read");
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 44 <= bytes.len() {
        out.push(pos);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4")) as usize;
        pos += 44 + len;
    }
    out
}

fn grace_verify(state: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grace"))
        .arg("--state-dir")
        .arg(state)
        .args(["audit", "verify"])
        .output()
        .expect("run grace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_full_log_continues_in_a_new_segment_and_the_chain_verifies_across_them() {
    let (d, path) = segmented(60);
    let segs = segments(&path);
    assert!(segs.len() >= 3, "several segments: {segs:?}");
    for s in &segs {
        let len = std::fs::metadata(s).expect("segment").len();
        assert!(
            len < 2_000 + 400,
            "a segment closes once past the size: {len}"
        );
    }
    let records = all_records(&path);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "one sequence"
    );
    let appended: Vec<&AuditRecord> = records.iter().filter(|r| r.kind == "test.record").collect();
    assert_eq!(appended.len(), 60);
    // Every file after the first starts with the record that names its predecessor.
    let first_of_log = &read_all(&path).expect("log")[0];
    assert_eq!(first_of_log.kind, SEGMENT_STARTED);
    let last_seg = segs.last().expect("a segment");
    assert!(first_of_log.data["previous_segment"]
        .as_str()
        .is_some_and(|p| last_seg.ends_with(p)));
    let report = verify_chain(&path).expect("verify");
    assert!(report.ok(), "{report}");
    assert_eq!(report.segments.len(), segs.len());
    let (code, text) = grace_verify(d.path());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK: segment"), "{text}");

    // A reopened log (a serve restart) goes on in the active segment.
    let log = AuditLog::open(&path, &config()).expect("reopen");
    let next = log.append("test.record", json!({"i": 60})).expect("append");
    assert_eq!(next, seqs.len() as u64);
    drop(log);
    assert!(verify_chain(&path).expect("verify").ok());
}

#[test]
fn a_changed_record_in_an_old_segment_is_found() {
    let (d, path) = segmented(40);
    let first = segments(&path).remove(0);
    let mut bytes = std::fs::read(&first).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&first, bytes).expect("tamper");
    let report = verify_chain(&path).expect("verify");
    assert!(!report.ok(), "{report}");
    let bad = report
        .segments
        .iter()
        .find(|s| s.report.path == first)
        .expect("the segment is checked");
    assert!(!bad.linked());
    let (code, text) = grace_verify(d.path());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BAD:"), "{text}");
}

#[test]
fn a_rewritten_last_record_of_a_segment_breaks_the_link() {
    let (_d, path) = segmented(40);
    let segs = segments(&path);
    // The second segment with its last record cut: internally intact, but it no
    // longer ends where the next segment continues.
    let victim = &segs[1];
    let bytes = std::fs::read(victim).expect("read");
    let last = *frame_offsets(victim).last().expect("records");
    std::fs::write(victim, &bytes[..last]).expect("cut");
    let report = verify_chain(&path).expect("verify");
    assert!(!report.ok(), "{report}");
    assert!(report.to_string().contains("NOT LINKED"), "{report}");
}

#[test]
fn a_missing_middle_segment_is_found() {
    let (d, path) = segmented(60);
    let segs = segments(&path);
    let middle = &segs[segs.len() / 2];
    std::fs::remove_file(middle).expect("remove");
    let report = verify_chain(&path).expect("verify");
    assert!(!report.ok(), "{report}");
    let text = report.to_string();
    assert!(text.contains("MISSING: segment"), "{text}");
    assert!(text.contains(&middle.display().to_string()), "{text}");
    let (code, out) = grace_verify(d.path());
    assert_eq!(code, 1, "{out}");
}

#[test]
fn a_log_without_its_first_records_is_found() {
    let (_d, path) = segmented(60);
    // The active log replaced by the later half of itself: it starts mid-chain with a
    // record that continues no segment.
    let offsets = frame_offsets(&path);
    assert!(offsets.len() >= 3, "{offsets:?}");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[offsets[1]..]).expect("cut");
    let report = verify_chain(&path).expect("verify");
    assert!(!report.ok(), "{report}");
    assert!(
        report.to_string().contains("records before it are missing"),
        "{report}"
    );
}

#[test]
fn a_switch_cut_short_resumes_the_chain() {
    let (_d, path) = segmented(30);
    // A crash between the two renames of a switch: the full log moved, no new one.
    let dir = grace::audit::segments_dir(&path);
    std::fs::rename(&path, dir.join("29991231_235959-000000000999.log")).expect("move");
    let log = AuditLog::open(&path, &config()).expect("open resumes");
    let first = &read_all(&path).expect("read")[0];
    assert_eq!(first.kind, SEGMENT_STARTED);
    assert_eq!(first.data["reason"], "resumed");
    log.append("test.record", json!({"after": true}))
        .expect("append");
    drop(log);
    let report = verify_chain(&path).expect("verify");
    assert!(report.ok(), "{report}");
}

#[test]
fn two_writers_follow_each_other_across_a_switch() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("audit.log");
    let a = AuditLog::open(&path, &config()).expect("a");
    let b = AuditLog::open(&path, &config()).expect("b");
    for i in 0..40 {
        let w = if i % 3 == 0 { &b } else { &a };
        w.append("test.record", json!({ "i": i, "pad": "y".repeat(80) }))
            .expect("append");
    }
    drop((a, b));
    assert!(segments(&path).len() >= 2);
    let report = verify_chain(&path).expect("verify");
    assert!(report.ok(), "{report}");
    let n = all_records(&path)
        .iter()
        .filter(|r| r.kind == "test.record")
        .count();
    assert_eq!(n, 40);
}
