//! The snapshot manager on real files in a temporary state directory: verified
//! restores that skip corrupted snapshots, retention, the playbooks that need it, and
//! `restore_model_weights` against a running tree with a real `model` kernel.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use grace::bus::Topic;
use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::playbook::action::Escalation;
use grace::playbook::{load_playbooks, ActionContext, ActionRegistry, Args};
use grace::snapshot::{SnapshotManager, SnapshotsConfig};
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use serde_json::{json, Value};

fn at(hours: i64, secs: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("ts")
        + chrono::Duration::hours(hours)
        + chrono::Duration::seconds(secs)
}

fn corrupt(path: &Path) {
    let mut b = std::fs::read(path).expect("read");
    b[0] ^= 0xff;
    std::fs::write(path, b).expect("write");
}

#[test]
fn a_corrupted_weights_file_comes_back_from_the_newest_good_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(dir.path());
    let m = SnapshotManager::new(&paths, SnapshotsConfig::default());
    let weights = dir.path().join("models/model.pt");
    std::fs::create_dir_all(weights.parent().expect("parent")).expect("mkdir");
    std::fs::write(&weights, b"version one").expect("write");
    assert_eq!(m.watched().expect("watched"), vec![weights.clone()]);
    m.create_at(&weights, at(0, 0)).expect("snapshot 1");
    std::fs::write(&weights, b"version two").expect("write");
    m.create_at(&weights, at(1, 0)).expect("snapshot 2");
    std::fs::write(&weights, b"version three").expect("write");
    let newest = m.create_at(&weights, at(2, 0)).expect("snapshot 3");

    let kind_dir = dir.path().join("snapshots/weights");
    assert!(kind_dir.join("model_20260101_020000.pt").is_file());
    assert_eq!(
        std::fs::read(kind_dir.join("model_latest.pt")).expect("latest"),
        b"version three"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(kind_dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    let first = &manifest["snapshots"][0];
    for key in ["file", "sha256", "size", "taken_at", "source"] {
        assert!(first.get(key).is_some(), "manifest lacks {key}: {first}");
    }

    // The newest snapshot rots on disk, then the watched file is corrupted.
    corrupt(&kind_dir.join(&newest.file));
    corrupt(&weights);
    let r = m.restore(&weights).expect("restore");
    assert_eq!(std::fs::read(&weights).expect("read"), b"version two");
    assert_eq!(r.snapshot.file, "model_20260101_010000.pt");
    assert_eq!(r.corrupted.len(), 1);
    assert_eq!(r.corrupted[0].file, newest.file);

    // Rollback: the newest verified snapshot that differs from what the file holds.
    let r = m.rollback(&weights).expect("rollback");
    assert_eq!(r.snapshot.file, "model_20260101_000000.pt");
    assert_eq!(std::fs::read(&weights).expect("read"), b"version one");
}

#[test]
fn a_restore_with_only_corrupted_snapshots_fails_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = SnapshotManager::new(&StatePaths::new(dir.path()), SnapshotsConfig::default());
    let cfg = dir.path().join("models/app.yaml");
    std::fs::create_dir_all(cfg.parent().expect("parent")).expect("mkdir");
    std::fs::write(&cfg, b"a: 1").expect("write");
    let e = m.create_at(&cfg, at(0, 0)).expect("snapshot");
    corrupt(&dir.path().join("snapshots/config").join(&e.file));
    std::fs::write(&cfg, b"a: 2").expect("write");
    let err = m.restore(&cfg).expect_err("nothing verifies");
    assert!(err.to_string().contains("1 corrupted skipped"), "{err}");
    assert_eq!(std::fs::read(&cfg).expect("read"), b"a: 2");
}

#[test]
fn retention_keeps_at_most_five_per_kind_and_nothing_older_than_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = SnapshotManager::new(&StatePaths::new(dir.path()), SnapshotsConfig::default());
    let weights = dir.path().join("models/m.pkl");
    std::fs::create_dir_all(weights.parent().expect("parent")).expect("mkdir");
    std::fs::write(&weights, b"w").expect("write");
    for h in 0..8 {
        m.create_at(&weights, at(h, 0)).expect("snapshot");
    }
    let kind_dir = dir.path().join("snapshots/weights");
    let on_disk = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("m_2026"))
            .collect();
        v.sort();
        v
    };
    let kept = m.manifest("weights").expect("manifest").snapshots;
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].file, "m_20260101_030000.pkl");
    assert_eq!(on_disk(&kind_dir).len(), 5);

    // A day and a half later only the new snapshot is young enough.
    m.create_at(&weights, at(7 + 36, 0)).expect("snapshot");
    let kept = m.manifest("weights").expect("manifest").snapshots;
    assert_eq!(kept.len(), 1);
    assert_eq!(on_disk(&kind_dir), vec!["m_20260102_190000.pkl".to_owned()]);

    // Two snapshots in the same second do not overwrite each other.
    m.create_at(&weights, at(7 + 36, 0)).expect("same second");
    assert_eq!(m.manifest("weights").expect("manifest").snapshots.len(), 2);
}

#[test]
fn the_playbooks_that_need_snapshots_now_load() {
    let set = load_playbooks(None).expect("defaults are valid");
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
    for name in [
        "quarantine_artifacts",
        "restore_from_snapshot",
        "restore_model_weights",
        "rollback_deployment",
    ] {
        assert!(set.get(name).is_some(), "{name} is loaded");
    }
    let actions = ActionRegistry::builtin();
    assert!(actions.provides("snapshots"));
}

fn incident(component: &str, details: Value) -> Incident {
    Incident {
        incident_id: "inc_20260101_000000_000001".into(),
        detected_at: grace::time::rfc3339(grace::time::now()),
        resolved_at: None,
        status: IncidentStatus::Open,
        failure_mode: "checksum_mismatch".into(),
        severity: Severity::High,
        component: component.into(),
        trigger: "model_integrity".into(),
        playbook: None,
        steps: Vec::new(),
        mttr_seconds: None,
        success: None,
        occurrences: 1,
        summary: "weights corrupted".into(),
        details,
        closed_reason: None,
    }
}

async fn run_action(system: &Arc<System>, action: &str, inc: Incident, args: Value) -> Value {
    let ctx = ActionContext::new(
        system.clone(),
        Arc::new(inc),
        "test",
        "step",
        Duration::from_secs(10),
        Arc::new(Escalation::default()),
    );
    let Value::Object(map) = args else {
        panic!("args must be an object")
    };
    ActionRegistry::builtin()
        .get(action)
        .expect("registered")
        .run(&ctx, &Args::new(action, map))
        .await
        .expect("action succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_model_weights_restores_and_restarts_the_model_kernel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
        [triggers.model_integrity]
        enabled = false
        [[kernel]]
        name = "model"
        kind = "model"
        heartbeat_interval = "1h"
        heartbeat_timeout = "2h"
    "#;
    let config: Config = toml::from_str(toml).expect("config");
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    let weights = dir.path().join("models/model.pt");
    let good = std::fs::read(&weights).expect("the model kernel wrote its weights");
    let status = system.registry.get("model").expect("model").status.clone();
    let restarts = status.restarts();

    // Snapshots of the good weights; the newest rots.
    let inc = incident("models/model.pt", json!({ "path": "models/model.pt" }));
    let out = run_action(&system, "create_snapshot", inc.clone(), json!({})).await;
    assert_eq!(out["created"].as_array().expect("list").len(), 1, "{out}");
    let m = SnapshotManager::from_config(&system.config, &system.paths);
    let newest = m.create(&weights).expect("second snapshot");
    corrupt(&dir.path().join("snapshots/weights").join(&newest.file));

    let events = system.bus.subscribe("test", &["snapshot.*"]);
    corrupt(&weights);
    let out = run_action(&system, "restore_model_weights", inc, json!({})).await;
    assert_eq!(out["kernel"], "model", "{out}");
    assert_eq!(out["restarted"], true);
    assert_eq!(
        out["restored"][0]["corrupted"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    assert_eq!(std::fs::read(&weights).expect("read"), good);
    assert!(
        status.restarts() > restarts,
        "the model kernel was restarted"
    );
    assert!(status.state().is_up());

    system.bus.pump(100, Duration::from_millis(100)).await;
    let mut topics = Vec::new();
    while let Some(e) = events.try_recv() {
        topics.push(e.topic);
    }
    assert!(topics.contains(&Topic::SnapshotRestored), "{topics:?}");
    system.audit.sync().expect("sync");
    let audit = grace::audit::read_all(&system.paths.audit_log()).expect("audit");
    assert!(audit.iter().any(|r| r.kind == "snapshot.restored"));
    tree.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_moves_a_kernels_artifacts_aside_with_a_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
        [snapshots.artifacts]
        job = ["out/result.bin", "out/cache"]
    "#;
    let config: Config = toml::from_str(toml).expect("config");
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(out_dir.join("cache")).expect("mkdir");
    std::fs::write(out_dir.join("result.bin"), b"bad").expect("write");
    std::fs::write(out_dir.join("cache/x"), b"x").expect("write");

    let inc = incident("job", Value::Null);
    let out = run_action(&system, "quarantine", inc, json!({})).await;
    assert_eq!(
        out["quarantined"].as_array().expect("list").len(),
        2,
        "{out}"
    );
    assert!(!out_dir.join("result.bin").exists());
    assert!(!out_dir.join("cache").exists());
    let qdir = dir.path().join("quarantine");
    assert!(qdir.join("job.json").is_file());
    let moved = std::fs::read_dir(&qdir)
        .expect("dir")
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .expect("quarantine folder");
    assert_eq!(std::fs::read_dir(moved.path()).expect("dir").count(), 2);
}
