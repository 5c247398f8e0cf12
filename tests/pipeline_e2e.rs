//! The whole self-healing pipeline on the tree `grace serve` runs (`Tree::start` over a
//! config): the heartbeat monitor and the real trigger actors detect, the dispatcher
//! runs the shipped playbooks, and `incidents.jsonl` and the audit log record it all.
//! Nothing here publishes an incident by hand except the burst that keeps the pipeline
//! busy while its own kernels are killed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::audit::{read_all, verify};
use grace::bus::Topic;
use grace::config::{parse, ConfigSource};
use grace::incident::{IncidentDraft, Severity};
use grace::kernel::{Fault, KernelStatus, Request};
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const WORKERS: usize = 12;

/// Fast heartbeats and checks; the triggers that watch the host or the working
/// directory are off so that only the faults of each test open incidents.
fn config() -> String {
    let mut c = String::from(
        r#"
[heartbeat]
check_interval = "50ms"
interval = "100ms"
timeout = "600ms"
critical_interval = "100ms"
critical_timeout = "1s"
[kernels]
max_restarts = 100
[triggers.heartbeat_failure]
interval = "100ms"
[triggers.critical_heartbeat]
interval = "100ms"
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
"#,
    );
    for i in 0..WORKERS {
        c.push_str(&format!(
            "[[kernel]]\nname = \"w{i}\"\nkind = \"kv_store\"\n"
        ));
    }
    c
}

struct Running {
    system: Arc<System>,
    tree: Option<Tree>,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = parse(&config(), ConfigSource::Embedded).expect("test config");
    let system =
        System::open(Arc::new(loaded.config), StatePaths::new(dir.path())).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    Running {
        system,
        tree: Some(tree),
        _dir: dir,
    }
}

impl Running {
    fn status(&self, name: &str) -> Arc<KernelStatus> {
        let entry = self.system.registry.get(name).expect("registered");
        entry.status.clone()
    }

    /// Kills the kernel's actor.
    fn kill(&self, name: &str) {
        let entry = self.system.registry.get(name).expect("registered");
        entry.actor().expect("running").kill();
    }

    /// Kills the kernel's actor and waits until its supervisor has replaced it.
    async fn kill_and_wait(&self, name: &str) {
        let st = self.status(name);
        let before = st.restarts();
        self.kill(name);
        let t0 = Instant::now();
        while st.restarts() == before || !st.state().is_up() {
            assert!(t0.elapsed() < WAIT, "{name} was not restarted");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Every complete line of `incidents.jsonl`, in order (one being written now is
    /// not complete yet).
    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.system.paths.incidents()).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("every line is an incident"))
            .collect()
    }

    /// The incidents, folded by id (the last line wins).
    fn incidents(&self) -> HashMap<String, Value> {
        self.lines()
            .into_iter()
            .filter_map(|v| Some((v["incident_id"].as_str()?.to_owned(), v)))
            .collect()
    }

    /// Waits until `n` incidents matching `pick` are closed; returns them.
    async fn closed(&self, n: usize, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
        let t0 = Instant::now();
        loop {
            let done: Vec<Value> = self
                .incidents()
                .into_values()
                .filter(|v| pick(v) && v["resolved_at"].is_string())
                .collect();
            if done.len() >= n {
                return done;
            }
            assert!(
                t0.elapsed() < WAIT,
                "{} of {n} incidents closed: {:#?}",
                done.len(),
                self.incidents()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the first closed incident matching `pick`.
    async fn closed_one(&self, pick: impl Fn(&Value) -> bool) -> Value {
        let mut all = self.closed(1, pick).await;
        all.swap_remove(0)
    }

    /// Once every incident is closed, the audit log is intact and its incident records
    /// are exactly the lines of `incidents.jsonl`, in the same order.
    async fn assert_audit_matches_incidents(&self) {
        let t0 = Instant::now();
        while self
            .incidents()
            .values()
            .any(|v| !v["resolved_at"].is_string())
        {
            assert!(t0.elapsed() < WAIT, "open: {:#?}", self.incidents());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let path = self.system.paths.audit_log();
        let report = verify(&path).expect("verify");
        assert!(report.ok(), "{report}");
        let audited: Vec<Value> = read_all(&path)
            .expect("read audit log")
            .into_iter()
            .filter(|r| r.kind.starts_with("incident."))
            .map(|r| r.data)
            .collect();
        assert_eq!(
            audited,
            self.lines(),
            "audit chain and incidents.jsonl agree"
        );
    }

    async fn stop(mut self) {
        if let Some(tree) = self.tree.take() {
            tree.shutdown(Duration::from_secs(10)).await;
        }
    }
}

async fn wait_up(st: &KernelStatus) {
    let t0 = Instant::now();
    while !st.state().is_up() {
        assert!(t0.elapsed() < WAIT, "{} never came back", st.name);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_kernel_is_detected_restarted_and_its_incident_resolved_and_audited() {
    let r = start().await;
    let w = r.status("w0");
    r.system.registry.inject("w0", Fault::Hang).expect("inject");

    let inc = r.closed_one(|v| v["component"] == "w0").await;
    assert_eq!(inc["trigger"], "heartbeat_failure", "{inc}");
    assert_eq!(inc["playbook"], "restart_kernel", "{inc}");
    assert_eq!(inc["status"], "resolved", "{inc}");
    let mttr = inc["mttr_seconds"].as_f64().expect("mttr");
    assert!(mttr > 0.0 && mttr < 5.0, "{inc}");
    eprintln!("hung kernel: MTTR {mttr:.3} s after detection");
    assert_eq!(inc["details"]["remediation"]["slo_met"], true, "{inc}");

    // The heartbeat monitor restarted it at once; the playbook saw that and only verified.
    assert_eq!(w.restarts(), 1, "restarted once: {inc:#}");
    assert_eq!(w.last_reason().as_deref(), Some("heartbeat_timeout"));
    assert_eq!(inc["steps"][0]["status"], "skipped", "{inc:#}");
    assert_eq!(inc["steps"][1]["status"], "ok", "{inc:#}");
    wait_up(&w).await;
    let answer = r
        .system
        .registry
        .call(
            "w0",
            Request::new("get", json!({ "key": "k" })),
            Duration::from_secs(2),
        )
        .await;
    assert!(answer.is_ok(), "the restarted kernel answers: {answer:?}");
    r.assert_audit_matches_incidents().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_critical_kernels_killed_at_once_are_one_emergency_all_back_within_slo() {
    let r = start().await;
    let names = ["message_bus", "self_healing", "coding_agent"];
    let before: Vec<u64> = names.iter().map(|n| r.status(n).restarts()).collect();
    for n in names {
        r.kill(n);
    }

    let inc = r.closed_one(|v| v["trigger"] == "critical_heartbeat").await;
    assert_eq!(
        inc["playbook"], "emergency_critical_kernel_recovery",
        "{inc}"
    );
    assert_eq!(inc["status"], "resolved", "{inc}");
    assert_eq!(inc["details"]["remediation"]["slo_ms"], 120_000);
    assert_eq!(inc["details"]["remediation"]["slo_met"], true, "{inc}");
    eprintln!(
        "three critical kernels killed: emergency playbook {} ms, MTTR {} s",
        inc["details"]["remediation"]["duration_ms"], inc["mttr_seconds"]
    );
    for (n, b) in names.iter().zip(before) {
        let st = r.status(n);
        assert!(st.restarts() > b, "{n} was restarted");
        wait_up(&st).await;
    }
    assert!(!r.system.emergency(), "emergency mode is off again");

    // The condition stays visible for two check intervals: still one incident.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let critical: Vec<Value> = r
        .incidents()
        .into_values()
        .filter(|v| v["trigger"] == "critical_heartbeat")
        .collect();
    assert_eq!(critical.len(), 1, "{critical:#?}");
    r.assert_audit_matches_incidents().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_critical_kernel_is_an_incident_its_supervisor_already_repaired() {
    let r = start().await;
    let agent = r.status("coding_agent");
    r.kill("coding_agent");
    let inc = r.closed_one(|v| v["trigger"] == "critical_heartbeat").await;
    assert_eq!(inc["component"], "coding_agent", "{inc:#}");
    assert_eq!(inc["failure_mode"], "critical_kernel_down", "{inc:#}");
    assert_eq!(inc["status"], "resolved", "{inc:#}");
    assert_eq!(
        inc["steps"][0]["status"], "skipped",
        "not restarted twice: {inc:#}"
    );
    assert_eq!(agent.restarts(), 1);
    wait_up(&agent).await;
    r.assert_audit_matches_incidents().await;
    r.stop().await;
}

fn draft(component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: "heartbeat_failure".into(),
        component: component.into(),
        failure_mode: "heartbeat_failure".into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{component} missed its heartbeat"),
        details: Value::Null,
        detected_at: Some(grace::time::rfc3339(grace::time::now())),
    }
}

/// Publishes an incident for each worker while `victim` is killed twice along the way;
/// every incident must still be opened, remediated and closed, on file and in the
/// audit chain.
async fn no_incident_is_lost_when_killing(victim: &str) {
    let r = start().await;
    let restarts = r.status(victim).restarts();
    for i in 0..WORKERS {
        if i == WORKERS / 3 || i == 2 * WORKERS / 3 {
            r.kill_and_wait(victim).await;
        }
        let d = draft(&format!("w{i}"));
        assert!(r
            .system
            .bus
            .emit(Topic::EventIncident, Some(&d.component), &d));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let closed = r
        .closed(WORKERS, |v| {
            v["component"].as_str().is_some_and(|c| c.starts_with('w'))
        })
        .await;
    let mut components: Vec<&str> = closed
        .iter()
        .map(|v| v["component"].as_str().unwrap_or_default())
        .collect();
    components.sort_unstable();
    components.dedup();
    assert_eq!(components.len(), WORKERS, "one incident per worker");
    for v in &closed {
        assert_eq!(v["status"], "resolved", "{v}");
    }
    assert!(
        r.status(victim).restarts() >= restarts + 2,
        "{victim} died twice"
    );
    r.assert_audit_matches_incidents().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_message_bus_mid_incident_loses_no_record() {
    no_incident_is_lost_when_killing("message_bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_incident_log_mid_incident_loses_no_record() {
    no_incident_is_lost_when_killing("incident_log").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_self_healing_mid_incident_loses_no_record() {
    no_incident_is_lost_when_killing("self_healing").await;
}
