//! The incident store on real files: deduplication and occurrences, MTTR and the
//! summary, a torn last line, reloading open incidents (as orphans), ids, audit records.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use grace::audit::{read_all, verify, AuditConfig, AuditLog, FsyncPolicy};
use grace::incident::{
    read_journal, Incident, IncidentDraft, IncidentError, IncidentStatus, IncidentStore,
    IncidentsConfig, Opened, Severity, StepRecord,
};
use serde_json::json;

fn draft(trigger: &str, component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.into(),
        component: component.into(),
        failure_mode: trigger.into(),
        severity: Severity::High,
        playbook: Some("restart_kernel".into()),
        summary: format!("{trigger} on {component}"),
        details: json!({ "age_ms": 61000 }),
        detected_at: None,
    }
}

fn store_in(dir: &Path, fsync: FsyncPolicy) -> IncidentStore {
    let audit = Arc::new(
        AuditLog::open(
            &dir.join("audit.log"),
            &AuditConfig {
                fsync,
                group_interval: Duration::from_millis(5),
                ..AuditConfig::default()
            },
        )
        .expect("audit"),
    );
    IncidentStore::load(
        &dir.join("incidents.jsonl"),
        audit,
        &IncidentsConfig {
            fsync,
            ..IncidentsConfig::default()
        },
    )
    .expect("store")
}

fn step(name: &str) -> StepRecord {
    StepRecord {
        name: name.into(),
        action: "restart_kernel".into(),
        status: "ok".into(),
        attempts: 1,
        duration_ms: 12,
        output: json!({ "restarted": "worker" }),
        available_before: None,
        available_after: None,
    }
}

fn lines(path: &Path) -> Vec<Incident> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is an incident"))
        .collect()
}

#[test]
fn one_open_incident_per_trigger_and_component_counts_repeats() {
    let d = tempfile::tempdir().expect("tempdir");
    let store = store_in(d.path(), FsyncPolicy::Group);
    let first = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    let Opened::New(inc) = &first else {
        panic!("first open is new: {first:?}")
    };
    assert_eq!(inc.occurrences, 1);
    assert_eq!(inc.status, IncidentStatus::Open);
    let again = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    assert_eq!(
        again,
        Opened::Repeat {
            incident_id: inc.incident_id.clone(),
            occurrences: 2
        }
    );
    assert_eq!(
        store
            .open(draft("heartbeat_failure", "worker"))
            .expect("open"),
        Opened::Repeat {
            incident_id: inc.incident_id.clone(),
            occurrences: 3
        }
    );
    // Another component, or another trigger, is another incident.
    assert!(store
        .open(draft("heartbeat_failure", "kv"))
        .expect("open")
        .is_new());
    assert!(store
        .open(draft("api_timeout", "worker"))
        .expect("open")
        .is_new());
    assert_eq!(store.open_incidents().len(), 3);

    // Each change is a line; the repeats are state lines too.
    let written = lines(store.path());
    assert_eq!(written.len(), 5);
    assert_eq!(written[2].occurrences, 3);

    // Once resolved, the same pair opens a new incident.
    store
        .resolve(
            &inc.incident_id,
            IncidentStatus::Resolved,
            true,
            vec![step("restart")],
        )
        .expect("resolve");
    let next = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    assert!(next.is_new());
    assert_ne!(next.incident_id(), inc.incident_id);
}

#[test]
fn resolve_computes_mttr_and_the_summary_has_percentiles() {
    let d = tempfile::tempdir().expect("tempdir");
    let store = store_in(d.path(), FsyncPolicy::Always);
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for (k, secs) in [1.0f64, 2.0, 3.0, 4.0].iter().enumerate() {
        let mut dr = draft("resource_spike", &format!("k{k}"));
        let detected = now - chrono::Duration::milliseconds((secs * 1000.0) as i64);
        dr.detected_at = Some(grace::time::rfc3339(detected));
        ids.push((
            store.open(dr).expect("open").incident_id().to_owned(),
            *secs,
        ));
    }
    for (id, secs) in &ids {
        let inc = store
            .resolve(id, IncidentStatus::Resolved, true, vec![step("shed")])
            .expect("resolve");
        let mttr = inc.mttr_seconds.expect("mttr");
        assert!(mttr >= *secs && mttr < secs + 5.0, "{mttr} for {secs}");
        assert_eq!(inc.success, Some(true));
        assert_eq!(inc.steps.len(), 1);
        let resolved =
            chrono::DateTime::parse_from_rfc3339(inc.resolved_at.as_deref().expect("at"))
                .expect("rfc3339");
        let detected = chrono::DateTime::parse_from_rfc3339(&inc.detected_at).expect("rfc3339");
        let diff = (resolved - detected).num_microseconds().expect("us") as f64 / 1e6;
        assert!(
            (diff - mttr).abs() < 1e-6,
            "mttr = resolved_at - detected_at"
        );
    }
    let open = store.open(draft("api_timeout", "x")).expect("open");
    store
        .set_status(open.incident_id(), IncidentStatus::Failed)
        .expect("fail");
    let s = store.summary();
    assert_eq!(s.total, 5);
    assert_eq!((s.by_status.resolved, s.by_status.failed), (4, 1));
    assert_eq!(s.mttr_count, 5);
    let p50 = s.mttr_p50_seconds.expect("p50");
    assert!((2.0..7.0).contains(&p50), "{p50}");
    assert!(s.mttr_max_seconds.expect("max") >= 4.0);
    assert!(s.to_string().contains("MTTR p50"));
}

#[test]
fn a_torn_last_line_is_tolerated_by_readers_and_cut_by_the_writer() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("incidents.jsonl");
    let id = {
        let store = store_in(d.path(), FsyncPolicy::Group);
        let id = store
            .open(draft("heartbeat_failure", "worker"))
            .expect("open")
            .incident_id()
            .to_owned();
        store.mitigate(&id, "restart_kernel").expect("mitigate");
        id
    };
    // A crash in the middle of the next line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    f.write_all(br#"{"incident_id":"inc_2025"#).expect("write");
    drop(f);

    let j = read_journal(&path).expect("read");
    assert_eq!(j.incidents.len(), 1);
    assert_eq!(j.incidents[0].status, IncidentStatus::Mitigating);
    assert!(j.torn_bytes > 0);
    assert!(j.bad_lines.is_empty());

    let store = store_in(d.path(), FsyncPolicy::Group);
    store
        .resolve(&id, IncidentStatus::Resolved, true, vec![])
        .expect("resolve");
    let written = lines(&path);
    assert_eq!(written.len(), 3, "torn line cut, next line whole");
    assert_eq!(written[2].status, IncidentStatus::Resolved);
    let kinds: Vec<String> = read_all(&d.path().join("audit.log"))
        .expect("audit")
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(
        kinds.contains(&"incidents.torn_line_cut".to_owned()),
        "{kinds:?}"
    );
}

#[test]
fn reopening_the_store_reloads_open_incidents_as_orphans() {
    let d = tempfile::tempdir().expect("tempdir");
    let (open_id, closed_id) = {
        let store = store_in(d.path(), FsyncPolicy::Group);
        let a = store
            .open(draft("heartbeat_failure", "worker"))
            .expect("open");
        let b = store
            .open(draft("config_drift", "grace.toml"))
            .expect("open");
        store
            .resolve(b.incident_id(), IncidentStatus::Resolved, true, vec![])
            .expect("resolve");
        store.sync().expect("sync");
        (a.incident_id().to_owned(), b.incident_id().to_owned())
    };
    let store = store_in(d.path(), FsyncPolicy::Group);
    let open = store.open_incidents();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].incident_id, open_id);
    assert_eq!(store.orphans(), open);
    // No one works on the orphan: a new occurrence opens a new incident.
    let again = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    assert!(again.is_new(), "{again:?}");
    assert_ne!(again.incident_id(), open_id);
    assert_eq!(store.summary().total, 3);
    assert_eq!(store.recent(10).len(), 3);
    assert_eq!(
        store.get(&closed_id).expect("get").expect("found").status,
        IncidentStatus::Resolved
    );
    match store.resolve(&closed_id, IncidentStatus::Resolved, true, vec![]) {
        Err(IncidentError::AlreadyClosed { status, .. }) => {
            assert_eq!(status, IncidentStatus::Resolved)
        }
        other => panic!("expected AlreadyClosed, got {other:?}"),
    }
    // New ids sort after the reloaded ones.
    let n = store.open(draft("api_timeout", "http")).expect("open");
    assert!(n.incident_id() > open_id.as_str());
}

#[test]
fn ids_are_unique_when_many_tasks_open_at_once() {
    let d = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(store_in(d.path(), FsyncPolicy::Group));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        store
                            .open(draft("exec", &format!("c{t}_{i}")))
                            .expect("open")
                            .incident_id()
                            .to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 400);
    for id in &ids {
        assert!(grace::incident::parse_id(id).is_some(), "{id}");
    }
}

#[test]
fn every_change_is_an_audit_record_and_errors_name_the_problem() {
    let d = tempfile::tempdir().expect("tempdir");
    let store = store_in(d.path(), FsyncPolicy::Group);
    let id = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open")
        .incident_id()
        .to_owned();
    store
        .open(draft("heartbeat_failure", "worker"))
        .expect("repeat");
    store.mitigate(&id, "restart_kernel").expect("mitigate");
    store
        .resolve(&id, IncidentStatus::Escalated, false, vec![step("a")])
        .expect("escalate");
    store.sync().expect("sync");
    let records = read_all(&d.path().join("audit.log")).expect("audit");
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "incident.opened",
            "incident.repeat",
            "incident.mitigating",
            "incident.escalated"
        ]
    );
    assert_eq!(records[3].data["incident_id"], json!(id));
    assert!(verify(&d.path().join("audit.log")).expect("verify").ok());

    assert!(matches!(
        store.resolve("inc_nope", IncidentStatus::Resolved, true, vec![]),
        Err(IncidentError::NotFound(_))
    ));
    let other = store.open(draft("a", "b")).expect("open");
    assert!(matches!(
        store.resolve(
            other.incident_id(),
            IncidentStatus::Mitigating,
            true,
            vec![]
        ),
        Err(IncidentError::NotTerminal(IncidentStatus::Mitigating))
    ));
}

#[test]
fn closed_incidents_past_the_memory_bound_are_still_found_in_the_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(
        AuditLog::open(&d.path().join("audit.log"), &AuditConfig::default()).expect("audit"),
    );
    let store = IncidentStore::load(
        &d.path().join("incidents.jsonl"),
        audit,
        &IncidentsConfig {
            keep_recent: 2,
            ..IncidentsConfig::default()
        },
    )
    .expect("store");
    let mut ids = Vec::new();
    for k in 0..5 {
        let id = store
            .open(draft("t", &format!("c{k}")))
            .expect("open")
            .incident_id()
            .to_owned();
        store
            .resolve(&id, IncidentStatus::Resolved, true, vec![])
            .expect("resolve");
        ids.push(id);
    }
    assert_eq!(store.recent(10).len(), 2);
    assert_eq!(store.recent(10)[0].incident_id, ids[4], "newest first");
    assert_eq!(store.summary().total, 5);
    let old = store.get(&ids[0]).expect("get").expect("in the file");
    assert_eq!(old.status, IncidentStatus::Resolved);
    assert!(store
        .get("inc_19700101_000000_000000")
        .expect("get")
        .is_none());
}
