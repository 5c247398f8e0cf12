//! Verified healing on the tree `grace serve` runs: real triggers detect, the shipped
//! playbooks act, and the incident's verdict follows what the service does afterwards,
//! not whether the playbook's steps returned. Each test reproduces a case where the
//! incident used to be recorded `resolved` while the fault was still there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::{parse, ConfigSource};
use grace::kernel::Control;
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// Every trigger off but those a test turns on; verification fast enough for tests.
const BASE: &str = r#"
[heartbeat]
check_interval = "50ms"
interval = "100ms"
timeout = "2s"
[playbooks.verify]
interval = "50ms"
successes = 2
window = "100ms"
timeout = "1500ms"
[triggers.heartbeat_failure]
enabled = false
[triggers.critical_heartbeat]
enabled = false
[triggers.resource_spike]
enabled = false
[triggers.config_drift]
enabled = false
[triggers.model_integrity]
enabled = false
[triggers.scheduled]
enabled = false
[triggers.event_anomaly]
enabled = false
[triggers.kpi_threshold]
enabled = false
[triggers.trust_score]
enabled = false
"#;

struct Running {
    system: Arc<System>,
    tree: Option<Tree>,
    dir: tempfile::TempDir,
}

/// Starts the tree over `BASE` with `extra` appended (a later table of the same name
/// is not allowed in TOML, so `extra` replaces a whole `[triggers.X]` section by name).
async fn start(extra: &str, replace: &[&str]) -> Running {
    start_with(extra, replace, &[]).await
}

/// [`start`], with `files` (name, content) written into the state directory first.
async fn start_with(extra: &str, replace: &[&str], files: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write file");
    }
    let mut text = String::new();
    let mut skip = false;
    for line in BASE.lines() {
        if line.starts_with('[') {
            skip = replace.iter().any(|r| line == format!("[triggers.{r}]"));
        }
        if !skip {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(&extra.replace("$DIR", &dir.path().display().to_string()));
    let loaded = parse(&text, ConfigSource::Embedded).expect("test config");
    let system =
        System::open(Arc::new(loaded.config), StatePaths::new(dir.path())).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    Running {
        system,
        tree: Some(tree),
        dir,
    }
}

impl Running {
    fn incidents(&self) -> HashMap<String, Value> {
        let text = std::fs::read_to_string(self.system.paths.incidents()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Some((v["incident_id"].as_str()?.to_owned(), v)))
            .collect()
    }

    /// The first closed incident of `trigger`.
    async fn closed(&self, trigger: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let found = self
                .incidents()
                .into_values()
                .find(|v| v["trigger"] == trigger && v["resolved_at"].is_string());
            if let Some(v) = found {
                return v;
            }
            assert!(
                t0.elapsed() < WAIT,
                "no closed {trigger} incident: {:#?}",
                self.incidents()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The summaries of every alert written so far.
    fn alert_summaries(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dir.path().join("alerts")) else {
            return Vec::new();
        };
        rd.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter_map(|v| {
                v["payload"]["summary"]
                    .as_str()
                    .or(v["summary"].as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    async fn stop(mut self) {
        if let Some(t) = self.tree.take() {
            t.shutdown(Duration::from_secs(10)).await;
        }
    }
}

fn step<'a>(inc: &'a Value, action: &str) -> &'a Value {
    inc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["action"] == action))
        .unwrap_or_else(|| panic!("no {action} step in {inc:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_that_cleanup_cannot_free_is_a_failed_incident_not_a_resolved_one() {
    // Any use of the disk is "over the threshold": the condition holds whatever
    // resource_cleanup does, as on a disk filled by something Grace does not own.
    let r = start(
        r#"
[triggers.resource_spike]
interval = "100ms"
for = "0s"
disk_percent = 0.0001
cpu_for = "1h"
memory_for = "1h"
"#,
        &["resource_spike"],
    )
    .await;
    let inc = r.closed("resource_spike").await;
    assert_eq!(inc["failure_mode"], "disk_pressure", "{inc:#}");
    assert_eq!(
        step(&inc, "resource_cleanup")["status"],
        "skipped",
        "freed nothing: {inc:#}"
    );
    assert_eq!(inc["status"], "failed", "{inc:#}");
    assert_eq!(inc["closed_reason"], "verification_failed", "{inc:#}");
    assert_eq!(inc["success"], false);
    let why = inc["details"]["remediation"]["verification"]["failure"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("disk_pressure still holds"), "{inc:#}");
    let summaries = r.alert_summaries();
    assert!(
        !summaries
            .iter()
            .any(|s| s.contains("freed") || s.contains("verified")),
        "no alert claims a repair: {summaries:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_that_no_snapshot_can_undo_is_not_reported_as_restored() {
    // The file is in the baseline from the start; no snapshot of it exists, so the
    // restore step has nothing to put back.
    let r = start_with(
        r#"
[triggers.config_drift]
interval = "100ms"
for = "0s"
paths = ["$DIR/app.toml"]
"#,
        &["config_drift"],
        &[("app.toml", "a = 1\n")],
    )
    .await;
    // Give the trigger its first check (the baseline), then drift the file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.incidents().is_empty(), "{:#?}", r.incidents());
    std::fs::write(r.dir.path().join("app.toml"), "a = 2\n").expect("drift");
    let inc = r.closed("config_drift").await;
    assert_ne!(inc["status"], "resolved", "the file still differs: {inc:#}");
    assert_eq!(inc["closed_reason"], "verification_failed", "{inc:#}");
    assert_eq!(
        step(&inc, "restore_from_snapshot")["status"],
        "skipped",
        "{inc:#}"
    );
    let summaries = r.alert_summaries();
    assert!(
        !summaries
            .iter()
            .any(|s| s.contains("restored from snapshot")),
        "no alert claims a restore that did not happen: {summaries:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_kernel_restarted_and_answering_is_resolved_with_mttr_to_verified_recovery() {
    let r = start(
        r#"
[triggers.heartbeat_failure]
interval = "100ms"
[[kernel]]
name = "kv"
kind = "kv_store"
heartbeat_timeout = "400ms"
"#,
        &["heartbeat_failure"],
    )
    .await;
    r.system
        .registry
        .inject("kv", grace::kernel::Fault::Hang)
        .expect("hang");
    let inc = r.closed("heartbeat_failure").await;
    assert_eq!(inc["status"], "resolved", "{inc:#}");
    assert!(
        ["verified", "recovered_without_action"]
            .contains(&inc["closed_reason"].as_str().unwrap_or_default()),
        "{inc:#}"
    );
    let samples = inc["details"]["remediation"]["verification"]["samples"].as_u64();
    assert!(samples.is_some_and(|n| n >= 2), "{inc:#}");
    let answered = r
        .system
        .registry
        .control("kv", Control::Health, Duration::from_secs(1))
        .await;
    assert!(answered.is_ok(), "the kernel answers: {answered:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_an_earlier_serve_left_mitigating_is_closed_recovered_by_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{BASE}\n[[kernel]]\nname = \"kv\"\nkind = \"kv_store\"\n").replace(
        "[triggers.heartbeat_failure]\nenabled = false",
        "[triggers.heartbeat_failure]\ninterval = \"100ms\"",
    );
    let config = Arc::new(parse(&text, ConfigSource::Embedded).expect("config").config);
    // An earlier run: the incident was being remediated when serve died.
    let earlier = System::open(config.clone(), StatePaths::new(dir.path())).expect("system");
    let draft = grace::incident::IncidentDraft {
        trigger: "heartbeat_failure".into(),
        component: "kv".into(),
        failure_mode: "heartbeat_failure".into(),
        severity: grace::incident::Severity::High,
        playbook: Some("restart_kernel".into()),
        summary: "kv missed its heartbeats".into(),
        details: Value::Null,
        detected_at: None,
    };
    let id = match earlier.incidents.open(draft).expect("open") {
        grace::incident::Opened::New(i) => i.incident_id,
        other => panic!("{other:?}"),
    };
    earlier
        .incidents
        .mitigate(&id, "restart_kernel")
        .expect("mitigating");
    earlier.incidents.sync().expect("sync");
    drop(earlier);

    // The next serve: the kernel is healthy, the trigger finds nothing.
    let system = System::open(config, StatePaths::new(dir.path())).expect("system");
    assert_eq!(
        system.incidents.orphans().len(),
        1,
        "left behind by the earlier run"
    );
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    let r = Running {
        system,
        tree: Some(tree),
        dir,
    };
    let inc = r.closed("heartbeat_failure").await;
    assert_eq!(inc["incident_id"], id.as_str());
    assert_eq!(inc["status"], "resolved", "{inc:#}");
    assert_eq!(inc["closed_reason"], "recovered_by_restart", "{inc:#}");
    assert!(
        inc["mttr_seconds"].as_f64().is_some_and(|m| m > 0.0),
        "{inc:#}"
    );
    assert!(r.system.incidents.orphans().is_empty());
    r.stop().await;
}
