//! Snapshot-backed remediation in a running tree with real files and processes:
//! corrupted model weights are seen through a file event and restored within a
//! second; a quarantined exec kernel (by the action, or by its playbook after a real
//! crash) stays down until its artifacts are released; a rollback writes back the
//! previous snapshot of a kernel's artifact.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::kernel::Control;
use grace::playbook::action::Escalation;
use grace::playbook::{ActionContext, ActionRegistry, Args};
use grace::snapshot::SnapshotManager;
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use serde_json::Value;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// A tree over `dir` with `toml`, every trigger off but those `keep` names.
async fn tree(dir: &Path, toml: &str, keep: &[&str]) -> (Tree, Arc<System>) {
    let mut config: Config = toml::from_str(toml).expect("config");
    config.triggers.enable_only(keep);
    let system = System::open(Arc::new(config), StatePaths::new(dir)).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    (tree, system)
}

fn incident(component: &str) -> Incident {
    Incident {
        incident_id: "inc_20260101_000000_000002".into(),
        detected_at: grace::time::rfc3339(grace::time::now()),
        resolved_at: None,
        status: IncidentStatus::Open,
        failure_mode: "sandbox_crash".into(),
        severity: Severity::High,
        component: component.into(),
        trigger: "sandbox_failure".into(),
        playbook: None,
        steps: Vec::new(),
        mttr_seconds: None,
        success: None,
        occurrences: 1,
        summary: "test".into(),
        details: Value::Null,
        closed_reason: None,
    }
}

/// Runs one built-in action as a playbook step would, for `component`.
async fn run_action(system: &Arc<System>, action: &str, component: &str) -> Value {
    let ctx = ActionContext::new(
        system.clone(),
        Arc::new(incident(component)),
        "test",
        action,
        10 * S,
        Arc::new(Escalation::default()),
    );
    ActionRegistry::builtin()
        .get(action)
        .expect("registered")
        .run(&ctx, &Args::new(action, serde_json::Map::new()))
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// Polls `cond` every few milliseconds; how long it took, or None after `within`.
async fn until(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if cond() {
            return Some(t.elapsed());
        }
        tokio::time::sleep(2 * MS).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_weights_are_restored_within_a_second_of_the_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The periodic check runs once a minute: only the file event can be this quick.
    let toml = r#"
        [triggers.model_integrity]
        interval = "60s"
        [[kernel]]
        name = "model"
        kind = "model"
        heartbeat_interval = "100ms"
        heartbeat_timeout = "10s"
    "#;
    let (tree, system) = tree(dir.path(), toml, &["model_integrity"]).await;
    let weights = dir.path().join("models/model.pt");
    let good = std::fs::read(&weights).expect("the model kernel wrote its weights");
    let m = SnapshotManager::from_config(&system.config, &system.paths);
    m.create(&weights).expect("snapshot of the good weights");
    // The trigger's first check has armed the watch on models/.
    tokio::time::sleep(300 * MS).await;

    let written = Instant::now();
    std::fs::write(&weights, vec![0x5a; good.len()]).expect("garbage");
    let restored = until(5 * S, || std::fs::read(&weights).is_ok_and(|b| b == good))
        .await
        .expect("the weights are restored");
    let latency = written.elapsed();
    eprintln!("weights restored {restored:?} after the garbage was written");
    assert!(latency < S, "restored after {latency:?}");
    let stats = system
        .registry
        .control("trigger.model_integrity", Control::Stats, S)
        .await
        .expect("trigger stats");
    assert!(
        stats["file_checks"].as_u64().is_some_and(|n| n >= 1),
        "checked on the file event, not the minute sweep: {stats}"
    );

    let inc = system
        .incidents
        .recent(10)
        .into_iter()
        .find(|i| i.trigger == "model_integrity")
        .expect("an incident");
    assert_eq!(inc.playbook.as_deref(), Some("restore_model_weights"));
    assert!(
        inc.component.ends_with("models/model.pt"),
        "{}",
        inc.component
    );
    let status = system.registry.get("model").expect("model").status.clone();
    until(5 * S, || status.state().is_up())
        .await
        .expect("the model kernel runs on the restored weights");
    tree.shutdown(5 * S).await;
}

/// A sandboxed (`sandbox = true`) exec kernel `job` that needs its artifact
/// `out/result.bin` (without it the process exits at once), in a tree with `extra` config and the triggers `keep` names; returns
/// once it runs.
struct Job {
    dir: tempfile::TempDir,
    out: std::path::PathBuf,
    tree: Tree,
    system: Arc<System>,
    status: Arc<grace::kernel::KernelStatus>,
}

async fn job(extra: &str, keep: &[&str]) -> Job {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("result.bin"), b"v1").expect("artifact");
    let toml = format!(
        r#"
        {extra}
        [snapshots.artifacts]
        job = ["out/result.bin"]
        [[kernel]]
        name = "job"
        kind = "exec"
        sandbox = true
        heartbeat_interval = "100ms"
        heartbeat_timeout = "500ms"
        options = {{ command = "sh", args = ["-c", "test -f out/result.bin || exit 2; exec sleep 60"], cwd = "{}" }}
        "#,
        dir.path().display()
    );
    let (tree, system) = tree(dir.path(), &toml, keep).await;
    let status = system.registry.get("job").expect("job").status.clone();
    until(5 * S, || status.state().is_up())
        .await
        .expect("job runs");
    Job {
        dir,
        out,
        tree,
        system,
        status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_keeps_an_exec_kernel_down_until_release_brings_its_artifacts_back() {
    // The heartbeat trigger runs too: a kernel stopped on purpose is not "hung".
    let Job {
        dir,
        out,
        tree,
        system,
        status,
    } = job("", &["heartbeat_failure"]).await;
    let pid = |v: Value| v["pid"].as_u64();
    let first = system.registry.control("job", Control::Stats, S).await;
    let first = pid(first.expect("stats")).expect("a process");

    let q = run_action(&system, "quarantine", "job").await;
    assert_eq!(q["stopped"], true, "{q}");
    assert_eq!(q["quarantined"].as_array().map(Vec::len), Some(1), "{q}");
    assert!(!out.join("result.bin").exists(), "moved aside");
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), None).is_err(),
        "the job's process is gone"
    );
    let restarts = status.restarts();
    // Three heartbeat timeouts later it is still down, and nothing restarted it.
    tokio::time::sleep(1500 * MS).await;
    assert!(!status.state().is_up(), "kept down: {:?}", status.state());
    assert_eq!(status.restarts(), restarts);
    assert!(!out.join("result.bin").exists());

    let r = run_action(&system, "release_quarantine", "job").await;
    assert_eq!(r["restarted"], true, "{r}");
    assert_eq!(std::fs::read(out.join("result.bin")).expect("back"), b"v1");
    assert!(
        !dir.path().join("quarantine/job.json").exists(),
        "record consumed"
    );
    until(5 * S, || status.state().is_up())
        .await
        .expect("job runs again");
    // It keeps running on its artifact (a missing one would end it at once).
    tokio::time::sleep(300 * MS).await;
    let again = system.registry.control("job", Control::Stats, S).await;
    let again = again.expect("stats");
    assert!(status.state().is_up() && again["exit"].is_null(), "{again}");
    assert_ne!(pid(again), Some(first), "a new process");
    tree.shutdown(5 * S).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_exec_kernel_is_quarantined_by_its_playbook_and_stays_down() {
    let Job {
        dir,
        out,
        tree,
        system,
        status,
    } = job(
        "[triggers.sandbox_failure]\n        interval = \"100ms\"",
        &["sandbox_failure", "heartbeat_failure"],
    )
    .await;
    let stats = system.registry.control("job", Control::Stats, S).await;
    let pid = stats.expect("stats")["pid"].as_u64().expect("a process");

    // The sandboxed process dies: its supervisor restarts it, the trigger sees the
    // crash, and quarantine_artifacts stops it and moves its artifact aside.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let t = Instant::now();
    let inc = loop {
        let done = system
            .incidents
            .recent(10)
            .into_iter()
            .find(|i| i.trigger == "sandbox_failure" && i.status == IncidentStatus::Resolved);
        if let Some(i) = done {
            break i;
        }
        assert!(t.elapsed() < 8 * S, "{:?}", system.incidents.recent(10));
        tokio::time::sleep(20 * MS).await;
    };
    assert_eq!(
        (inc.component.as_str(), inc.playbook.as_deref()),
        ("job", Some("quarantine_artifacts"))
    );
    assert!(!out.join("result.bin").exists(), "moved aside");
    assert!(dir.path().join("quarantine/job.json").is_file());
    let restarts = status.restarts();
    tokio::time::sleep(1500 * MS).await;
    assert!(!status.state().is_up(), "kept down: {:?}", status.state());
    assert_eq!(status.restarts(), restarts, "nothing restarted it");

    let r = run_action(&system, "release_quarantine", "job").await;
    assert_eq!(r["restarted"], true, "{r}");
    until(5 * S, || status.state().is_up())
        .await
        .expect("job runs again");
    assert_eq!(std::fs::read(out.join("result.bin")).expect("back"), b"v1");
    tree.shutdown(5 * S).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_deployment_writes_back_the_previous_snapshot_of_an_artifact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
        [snapshots.artifacts]
        api = ["app/config.json"]
    "#;
    let config: Config = toml::from_str(toml).expect("config");
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let file = dir.path().join("app/config.json");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, br#"{"version": 1}"#).expect("v1");
    let m = SnapshotManager::from_config(&system.config, &system.paths);
    m.create_at(&file, grace::time::now() - chrono::Duration::minutes(5))
        .expect("snapshot of v1");

    // A deploy of v2; the playbook's first step snapshots what runs now.
    std::fs::write(&file, br#"{"version": 2}"#).expect("v2");
    let snap = run_action(&system, "create_snapshot", "api").await;
    assert_eq!(snap["created"].as_array().map(Vec::len), Some(1), "{snap}");

    let out = run_action(&system, "rollback_deployment", "api").await;
    assert_eq!(out["kernel"], "api", "{out}");
    assert_eq!(std::fs::read(&file).expect("read"), br#"{"version": 1}"#);
    let rolled = out["rolled_back"].as_array().expect("list");
    assert_eq!(rolled.len(), 1, "{out}");
}
