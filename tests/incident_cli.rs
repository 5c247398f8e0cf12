//! `grace incidents` and `grace audit verify` through their library functions, over a
//! state directory written by the real store and audit log.

use std::sync::Arc;

use grace::audit::{AuditConfig, AuditLog};
use grace::cli::{audit_verify, incidents};
use grace::incident::{IncidentDraft, IncidentStatus, IncidentStore, IncidentsConfig, Severity};
use grace::state::StatePaths;
use serde_json::{json, Value};

fn draft(trigger: &str, component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.into(),
        component: component.into(),
        failure_mode: trigger.into(),
        severity: Severity::Medium,
        playbook: None,
        summary: String::new(),
        details: Value::Null,
        detected_at: None,
    }
}

fn populate(paths: &StatePaths) -> (String, String) {
    paths.create().expect("state dir");
    let audit =
        Arc::new(AuditLog::open(&paths.audit_log(), &AuditConfig::default()).expect("audit"));
    let store =
        IncidentStore::load(&paths.incidents(), audit, &IncidentsConfig::default()).expect("store");
    let a = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open")
        .incident_id()
        .to_owned();
    store
        .open(draft("heartbeat_failure", "worker"))
        .expect("repeat");
    store.mitigate(&a, "restart_kernel").expect("mitigate");
    store
        .resolve(&a, IncidentStatus::Resolved, true, vec![])
        .expect("resolve");
    let b = store
        .open(draft("resource_spike", "host"))
        .expect("open")
        .incident_id()
        .to_owned();
    store.sync().expect("sync");
    (a, b)
}

fn run(paths: &StatePaths, json: bool, open: bool) -> String {
    let mut out = Vec::new();
    incidents(paths, json, open, &mut out).expect("incidents");
    String::from_utf8(out).expect("utf8")
}

#[test]
fn the_table_lists_incidents_with_mttr_and_ends_with_the_summary() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let (resolved, open) = populate(&paths);

    let text = run(&paths, false, false);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID"), "{text}");
    for h in [
        "STATUS",
        "REASON",
        "TRIGGER",
        "COMPONENT",
        "PLAYBOOK",
        "MTTR",
        "OCCURRENCES",
    ] {
        assert!(lines[0].contains(h), "{text}");
    }
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first[0], resolved);
    assert_eq!(
        &first[1..6],
        [
            "resolved",
            "verified",
            "heartbeat_failure",
            "worker",
            "restart_kernel"
        ]
    );
    assert!(first[6].ends_with('s'), "MTTR column: {text}");
    assert_eq!(first[7], "2");
    let second: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        second,
        [
            open.as_str(),
            "open",
            "-",
            "resource_spike",
            "host",
            "-",
            "-",
            "1"
        ]
    );
    let summary = lines[3];
    assert!(summary.starts_with("2 incidents (1 open"), "{summary}");
    assert!(summary.contains("1 resolved"), "{summary}");
    assert!(summary.contains("MTTR p50"), "{summary}");

    let only_open = run(&paths, false, true);
    assert!(only_open.contains(&open));
    assert!(!only_open.contains(&resolved));
}

#[test]
fn json_output_has_incidents_and_summary() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let (resolved, _) = populate(&paths);
    let doc: Value = serde_json::from_str(&run(&paths, true, false)).expect("json");
    assert_eq!(doc["incidents"].as_array().expect("array").len(), 2);
    assert_eq!(doc["incidents"][0]["incident_id"], json!(resolved));
    assert_eq!(doc["incidents"][0]["occurrences"], json!(2));
    assert!(doc["incidents"][0]["mttr_seconds"].is_number());
    assert_eq!(doc["summary"]["total"], json!(2));
    assert_eq!(doc["summary"]["by_status"]["open"], json!(1));
    let open: Value = serde_json::from_str(&run(&paths, true, true)).expect("json");
    assert_eq!(open["incidents"].as_array().expect("array").len(), 1);
}

#[test]
fn an_empty_state_directory_has_no_incidents_and_an_intact_log() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let text = run(&paths, false, false);
    assert!(text.starts_with("no incidents"), "{text}");
    assert!(text.contains("0 incidents"), "{text}");
    let mut out = Vec::new();
    assert!(audit_verify(&paths, &mut out).expect("verify"));
    assert!(String::from_utf8(out).expect("utf8").starts_with("OK"));
}

#[test]
fn audit_verify_reports_ok_with_the_count_or_the_first_bad_record() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    populate(&paths);
    let mut out = Vec::new();
    assert!(audit_verify(&paths, &mut out).expect("verify"));
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.starts_with("OK"), "{text}");
    assert!(text.contains("5 records"), "{text}");

    let mut bytes = std::fs::read(paths.audit_log()).expect("read");
    bytes[50] ^= 0xff; // inside record #0's payload
    std::fs::write(paths.audit_log(), &bytes).expect("write");
    let mut out = Vec::new();
    assert!(!audit_verify(&paths, &mut out).expect("verify"));
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.starts_with("BAD"), "{text}");
    assert!(text.contains("record #0 at byte 0"), "{text}");
    assert!(text.contains("sets the file aside"), "{text}");
}
