//! Retention of `incidents.jsonl` on real files: closed incidents past `retain_closed`
//! move to `incidents/<YYYY-MM>.jsonl`, open ones stay, and every reader (a reloaded
//! store, `grace incidents`) still finds them; a move cut short by a crash loses and
//! doubles nothing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use grace::audit::{read_all, AuditConfig, AuditLog};
use grace::incident::{
    read_incidents, read_journal, segment_files, IncidentDraft, IncidentStatus, IncidentStore,
    IncidentsConfig, Severity,
};
use serde_json::{json, Value};

fn draft(component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: "heartbeat_failure".into(),
        component: component.into(),
        failure_mode: "heartbeat_failure".into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{component} hung"),
        details: json!({}),
        detected_at: None,
    }
}

fn store_in(dir: &Path) -> IncidentStore {
    let audit =
        Arc::new(AuditLog::open(&dir.join("audit.log"), &AuditConfig::default()).expect("audit"));
    IncidentStore::load(
        &dir.join("incidents.jsonl"),
        audit,
        &IncidentsConfig {
            retain_closed: Duration::from_secs(30 * 24 * 3600),
            ..IncidentsConfig::default()
        },
    )
    .expect("store")
}

/// Opens incidents on `a`, `b` (both resolved) and `c` (left open); returns their ids.
fn three(store: &IncidentStore) -> [String; 3] {
    let ids = ["a", "b", "c"].map(|c| store.open(draft(c)).expect("open").incident_id().to_owned());
    for id in &ids[..2] {
        store
            .resolve(id, IncidentStatus::Resolved, true, Vec::new())
            .expect("resolve");
    }
    store.sync().expect("sync");
    ids
}

fn ids_in(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = read_journal(path)
        .expect("read")
        .incidents
        .into_iter()
        .map(|i| i.incident_id)
        .collect();
    v.sort();
    v
}

fn grace_incidents(state: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_grace"))
        .arg("--state-dir")
        .arg(state)
        .args(["incidents", "--json"])
        .output()
        .expect("run grace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn closed_incidents_past_retention_move_to_segments_and_stay_findable() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = d.path().join("incidents.jsonl");
    let store = store_in(d.path());
    let [a, b, c] = three(&store);
    // Within retention nothing moves.
    assert_eq!(
        store.segment_closed(grace::time::now()).expect("segment"),
        0
    );
    assert!(segment_files(&file).is_empty());

    let later = grace::time::now() + chrono::Duration::days(31);
    assert_eq!(store.segment_closed(later).expect("segment"), 2);
    // The open incident stays; the closed ones are in this month's segment, once each.
    assert_eq!(ids_in(&file), vec![c.clone()]);
    let segs = segment_files(&file);
    let month = grace::time::now().format("%Y-%m").to_string();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs[0].ends_with(format!("incidents/{month}.jsonl")));
    let seg_text = std::fs::read_to_string(&segs[0]).expect("segment");
    assert_eq!(
        seg_text.lines().count(),
        2,
        "one line per incident:\n{seg_text}"
    );
    let mut archived = ids_in(&segs[0]);
    archived.sort();
    assert_eq!(archived, vec![a.clone(), b.clone()]);
    let audit = read_all(&d.path().join("audit.log")).expect("audit");
    assert!(audit
        .iter()
        .any(|r| r.kind == "incidents.segmented" && r.data["moved"] == 2));

    // The store goes on appending to the new file, and finds the moved ones.
    store
        .resolve(&c, IncidentStatus::Resolved, true, Vec::new())
        .expect("resolve c");
    store.sync().expect("sync");
    assert_eq!(ids_in(&file), vec![c.clone()]);
    assert_eq!(
        store.get(&a).expect("get").map(|i| i.status),
        Some(IncidentStatus::Resolved)
    );
    drop(store);

    // A reloaded store (a serve restart) counts and finds every incident.
    let store = store_in(d.path());
    assert_eq!(store.summary().total, 3, "{:?}", store.summary());
    assert!(store.get(&b).expect("get").is_some());
    assert_eq!(store.recent(10).len(), 3);
    drop(store);

    // `grace incidents` lists them all.
    let doc = grace_incidents(d.path());
    let listed: Vec<&str> = doc["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["incident_id"].as_str())
        .collect();
    assert_eq!(listed.len(), 3, "{doc}");
    for id in [&a, &b, &c] {
        assert!(listed.contains(&id.as_str()), "{id} in {doc}");
    }
}

#[test]
fn a_move_cut_short_by_a_crash_neither_loses_nor_doubles() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = d.path().join("incidents.jsonl");
    let store = store_in(d.path());
    let [a, _, c] = three(&store);
    drop(store);
    // The segment was written, the crash came before incidents.jsonl was rewritten.
    let before = std::fs::read(&file).expect("read");
    let store = store_in(d.path());
    let later = grace::time::now() + chrono::Duration::days(31);
    store.segment_closed(later).expect("segment");
    drop(store);
    std::fs::write(&file, &before).expect("put the old file back");

    let all = read_incidents(&file).expect("read");
    assert_eq!(all.incidents.len(), 3);
    let store = store_in(d.path());
    assert_eq!(store.summary().total, 3);
    // Moving again takes nothing twice.
    assert_eq!(store.segment_closed(later).expect("segment"), 2);
    let seg = &segment_files(&file)[0];
    assert_eq!(
        std::fs::read_to_string(seg).expect("seg").lines().count(),
        2
    );
    assert_eq!(ids_in(&file), vec![c]);
    assert!(ids_in(seg).contains(&a));
}
