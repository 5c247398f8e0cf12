//! The incident store's lifecycle guarantees on real files: an incident line stands only
//! with its audit record (a full disk or a replaced audit log leaves no half-recorded
//! incident, and the failure is reported), incidents an earlier run left open are
//! orphans that are adopted or closed with a reason, every close carries a reason and
//! the recovery time, and the watchdog's repairs of serve become incidents exactly once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use grace::audit::{read_all, verify, AuditConfig, AuditLog, FsyncPolicy};
use grace::incident::{
    import_watchdog_repairs, read_journal, ClosedReason, Closing, IncidentDraft, IncidentError,
    IncidentStatus, IncidentStore, IncidentsConfig, Opened, Severity,
};
use grace::state::StatePaths;
use grace::watchdog::incident_record::{read_imported, repairs_path, Cause, Repair};
use serde_json::{json, Value};

fn draft(trigger: &str, component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.into(),
        component: component.into(),
        failure_mode: trigger.into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{trigger} on {component}"),
        details: Value::Null,
        detected_at: None,
    }
}

fn audit_at(path: &Path) -> Arc<AuditLog> {
    let cfg = AuditConfig {
        fsync: FsyncPolicy::Group,
        group_interval: Duration::from_millis(5),
        ..AuditConfig::default()
    };
    Arc::new(AuditLog::open(path, &cfg).expect("audit"))
}

fn store_with(incidents: &Path, audit: Arc<AuditLog>) -> IncidentStore {
    IncidentStore::load(incidents, audit, &IncidentsConfig::default()).expect("store")
}

fn store_in(dir: &Path) -> IncidentStore {
    store_with(
        &dir.join("incidents.jsonl"),
        audit_at(&dir.join("audit.log")),
    )
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn on_a_full_disk_the_audit_failure_leaves_no_incident_line_and_is_reported() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = d.path().join("incidents.jsonl");
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    let store = store_with(&file, audit_at(Path::new("/dev/full")));
    assert_eq!(store.durability_error(), None);
    let err = store
        .open(draft("heartbeat_failure", "worker"))
        .expect_err("the audit append fails");
    assert!(matches!(err, IncidentError::Audit(_)), "{err:?}");
    assert_eq!(
        file_len(&file),
        0,
        "no incident line without its audit record"
    );
    assert!(store.open_incidents().is_empty());
    assert_eq!(store.summary().total, 0);
    let why = store.durability_error().expect("the failure is visible");
    assert!(why.contains("No space left"), "{why}");
    // No ghost to count a repeat on, in memory or in the file.
    assert!(store.open(draft("heartbeat_failure", "worker")).is_err());
    assert!(store.open_incidents().is_empty());
    drop(store);
    let store = store_with(&file, audit_at(&d.path().join("audit.log")));
    assert!(store.orphans().is_empty());
    let again = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    assert!(again.is_new(), "{again:?}");
    assert_eq!(read_journal(&file).expect("read").incidents.len(), 1);
}

#[test]
fn a_failed_audit_append_rolls_the_change_back_and_the_next_change_clears_the_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let (file, log) = (d.path().join("incidents.jsonl"), d.path().join("audit.log"));
    let store = store_in(d.path());
    let x = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open")
        .incident_id()
        .to_owned();
    store.sync().expect("sync");
    let (lines_len, audit_bytes) = (file_len(&file), std::fs::read(&log).expect("read"));
    // Something outside Grace empties the audit log: appends fail until it is back.
    std::fs::write(&log, b"").expect("truncate");
    assert!(store.open(draft("api_timeout", "http")).is_err());
    assert!(store.open(draft("heartbeat_failure", "worker")).is_err());
    assert!(store
        .resolve(&x, IncidentStatus::Resolved, true, vec![])
        .is_err());
    assert_eq!(
        file_len(&file),
        lines_len,
        "every failed change was cut off"
    );
    let open = store.open_incidents();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].occurrences, open[0].status),
        (1, IncidentStatus::Open)
    );
    assert!(store.durability_error().is_some());
    // The caller went on as if x were closed: it is an orphan now.
    assert_eq!(store.orphans(), open);

    std::fs::write(&log, &audit_bytes).expect("restore");
    let fresh = store
        .open(draft("heartbeat_failure", "worker"))
        .expect("open");
    assert!(fresh.is_new(), "{fresh:?}");
    assert_eq!(
        store.durability_error(),
        None,
        "cleared by a recorded change"
    );
    store.sync().expect("sync");
    let journal = read_journal(&file).expect("read");
    let ids: Vec<&str> = journal
        .incidents
        .iter()
        .map(|i| i.incident_id.as_str())
        .collect();
    assert_eq!(ids, [x.as_str(), fresh.incident_id()]);
    assert_eq!(read_all(&log).expect("audit").len(), 2);
    assert!(verify(&log).expect("verify").ok());
}

#[test]
fn open_and_mitigating_incidents_of_an_earlier_run_are_orphans_to_adopt_or_close() {
    let d = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let store = store_in(d.path());
        let a = store.open(draft("heartbeat_failure", "worker")).expect("a");
        let b = store.open(draft("api_timeout", "http")).expect("b");
        store
            .mitigate(b.incident_id(), "restart_service")
            .expect("mitigate");
        let c = store.open(draft("config_drift", "grace.toml")).expect("c");
        store
            .resolve(c.incident_id(), IncidentStatus::Resolved, true, vec![])
            .expect("resolve");
        store.sync().expect("sync");
        (a.incident_id().to_owned(), b.incident_id().to_owned())
    };
    let store = store_in(d.path());
    let orphans: Vec<(String, IncidentStatus)> = store
        .orphans()
        .into_iter()
        .map(|i| (i.incident_id, i.status))
        .collect();
    assert_eq!(
        orphans,
        [
            (a.clone(), IncidentStatus::Open),
            (b.clone(), IncidentStatus::Mitigating)
        ]
    );
    // A new occurrence opens a new incident, which then deduplicates as usual.
    let n = store.open(draft("heartbeat_failure", "worker")).expect("n");
    assert!(n.is_new() && n.incident_id() != a, "{n:?}");
    assert_eq!(
        store.open(draft("heartbeat_failure", "worker")).expect("r"),
        Opened::Repeat {
            incident_id: n.incident_id().to_owned(),
            occurrences: 2
        }
    );

    let closed = store
        .close(
            &b,
            Closing::new(IncidentStatus::Failed, ClosedReason::Abandoned),
        )
        .expect("close");
    assert_eq!(closed.closed_reason, Some(ClosedReason::Abandoned));
    let text = std::fs::read_to_string(d.path().join("incidents.jsonl")).expect("read");
    let last: Value = serde_json::from_str(text.lines().last().expect("line")).expect("json");
    assert_eq!(
        (
            &last["incident_id"],
            &last["status"],
            &last["closed_reason"]
        ),
        (&json!(b), &json!("failed"), &json!("abandoned"))
    );

    assert!(matches!(
        store.adopt(&a),
        Err(IncidentError::KeyTaken { ref other, .. }) if other == n.incident_id()
    ));
    store
        .resolve(n.incident_id(), IncidentStatus::Resolved, true, vec![])
        .expect("resolve n");
    store.adopt(&a).expect("adopt");
    assert!(store.orphans().is_empty());
    assert!(matches!(store.adopt(&a), Err(IncidentError::NotOrphan(_))));
    assert_eq!(
        store.open(draft("heartbeat_failure", "worker")).expect("r"),
        Opened::Repeat {
            incident_id: a.clone(),
            occurrences: 2
        }
    );
    store.sync().expect("sync");
    let kinds: Vec<String> = read_all(&d.path().join("audit.log"))
        .expect("audit")
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(kinds.iter().any(|k| k == "incident.adopted"), "{kinds:?}");

    let paths = StatePaths::new(d.path());
    let mut out = Vec::new();
    grace::cli::incidents(&paths, false, false, &mut out).expect("incidents");
    let table = String::from_utf8(out).expect("utf8");
    let row = table.lines().find(|l| l.starts_with(&b)).expect("row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..3], ["failed", "abandoned"], "{table}");
    assert!(table
        .lines()
        .last()
        .expect("summary")
        .contains("incidents ("));
}

#[test]
fn every_close_has_a_reason_and_mttr_runs_to_the_recovery_time() {
    let d = tempfile::tempdir().expect("tempdir");
    let store = store_in(d.path());
    let detected = chrono::Utc::now() - chrono::Duration::seconds(10);
    let mut early = draft("disk_pressure", "host");
    early.detected_at = Some(grace::time::rfc3339(detected));
    let id = store.open(early).expect("open").incident_id().to_owned();
    let recovered = detected + chrono::Duration::milliseconds(4250);
    let inc = store
        .close(
            &id,
            Closing::new(IncidentStatus::Resolved, ClosedReason::Verified).recovered_at(recovered),
        )
        .expect("close");
    assert_eq!(inc.mttr_seconds, Some(4.25));
    assert_eq!(inc.resolved_at, Some(grace::time::rfc3339(recovered)));
    assert_eq!(inc.success, Some(true));

    for (n, status, reason) in [
        (1, IncidentStatus::Resolved, ClosedReason::Verified),
        (2, IncidentStatus::Escalated, ClosedReason::Escalated),
        (3, IncidentStatus::Failed, ClosedReason::RemediationFailed),
    ] {
        let id = store.open(draft("t", &format!("c{n}"))).expect("open");
        let inc = store
            .resolve(id.incident_id(), status, false, vec![])
            .expect("resolve");
        assert_eq!(inc.closed_reason, Some(reason));
    }
    let id = store.open(draft("t", "c4")).expect("open");
    let inc = store
        .set_status(id.incident_id(), IncidentStatus::Failed)
        .expect("set");
    assert_eq!(inc.closed_reason, Some(ClosedReason::RemediationFailed));
}

fn repair(cause: Cause, detected: &str, healthy: &str) -> Repair {
    Repair {
        seq: 0,
        cause,
        reason: "killed by SIGKILL".into(),
        last_reason: None,
        exit_code: None,
        signal: Some("SIGKILL".into()),
        pid: 100,
        new_pid: 200,
        detected_at: detected.into(),
        healthy_at: healthy.into(),
        failed_starts: 0,
        watchdog_pid: 1,
    }
}

fn write_repairs(paths: &StatePaths, repairs: &[Repair]) {
    let text: String = repairs
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).expect("json")))
        .collect();
    std::fs::write(repairs_path(paths), text).expect("write");
}

#[test]
fn watchdog_repairs_become_resolved_serve_incidents_exactly_once() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let mut first = repair(
        Cause::Crash,
        "2026-01-01T00:00:00.000000Z",
        "2026-01-01T00:00:01.250000Z",
    );
    write_repairs(&paths, std::slice::from_ref(&first));
    {
        let store = store_in(d.path());
        assert_eq!(import_watchdog_repairs(&store, &paths).expect("import"), 1);
        assert_eq!(import_watchdog_repairs(&store, &paths).expect("again"), 0);
        store.sync().expect("sync");
    }
    let journal = read_journal(&d.path().join("incidents.jsonl")).expect("read");
    let inc = &journal.incidents[0];
    assert_eq!(
        (
            inc.component.as_str(),
            inc.trigger.as_str(),
            inc.failure_mode.as_str()
        ),
        ("serve", "watchdog", "serve_crash")
    );
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.closed_reason, Some(ClosedReason::RecoveredByRestart));
    assert_eq!(inc.mttr_seconds, Some(1.25));
    assert_eq!(inc.detected_at, first.detected_at);
    assert_eq!(read_imported(&paths), Some(0));

    // A crash after the incident but before the marker: the file alone prevents a
    // duplicate. Then a crash loop is added and imported once.
    std::fs::remove_file(d.path().join("watchdog_incidents.imported")).expect("rm marker");
    first.seq = 0;
    let mut second = repair(
        Cause::CrashLoop,
        "2026-01-02T00:00:00.000000Z",
        "2026-01-02T00:01:05.000000Z",
    );
    second.seq = 1;
    second.failed_starts = 5;
    write_repairs(&paths, &[first, second]);
    let store = store_in(d.path());
    assert_eq!(import_watchdog_repairs(&store, &paths).expect("import"), 1);
    let serve = store.for_component("serve", 10);
    assert_eq!(serve.len(), 2);
    assert_eq!(serve[0].failure_mode, "serve_crash_loop");
    assert_eq!(serve[0].severity, Severity::Critical);
    assert_eq!(serve[0].mttr_seconds, Some(65.0));
    assert_eq!(serve[0].steps[0].attempts, 6);
    assert_eq!(read_imported(&paths), Some(1));
}
