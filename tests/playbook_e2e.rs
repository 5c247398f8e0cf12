//! End to end on a real tree: real supervisor, heartbeat ticker and monitor, the
//! `message_bus`, `incident_log`, `self_healing` and `coding_agent` kernels, and the
//! shipped playbooks. An incident published on the bus is remediated and closed with
//! its MTTR in `incidents.jsonl`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use grace::bus::{MessageBusKernel, Topic};
use grace::config::{Config, HeartbeatConfig};
use grace::diagnostics::CodingAgentKernel;
use grace::incident::{IncidentDraft, IncidentLogKernel, Severity};
use grace::kernel::{Fault, Kernel, KernelContext, KernelError, KernelSpec, KernelStatus, Request};
use grace::playbook::{load_playbooks, ActionRegistry, Dispatcher, SelfHealingKernel};
use grace::state::StatePaths;
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::{spawn_heartbeat, HeartbeatHandle, System};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// A kernel that answers `get` with how many requests its current incarnation handled.
#[derive(Default)]
struct Counter(u64);

#[async_trait]
impl Kernel for Counter {
    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "get" => {
                self.0 += 1;
                Ok(json!(self.0))
            }
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other}"),
            }),
        }
    }
}

fn kernel<K: Kernel + Default>(name: &str) -> KernelSpec {
    KernelSpec::new(name, Arc::new(|| Box::new(K::default())))
}

struct Tree {
    system: Arc<System>,
    dispatcher: Arc<Dispatcher>,
    _sup: SupervisorHandle,
    _hb: HeartbeatHandle,
    _dir: tempfile::TempDir,
}

async fn tree(workers: &[&str]) -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let system =
        System::open(Arc::new(Config::default()), StatePaths::new(dir.path())).expect("system");
    let dispatcher = Dispatcher::new(
        load_playbooks(None).expect("default playbooks"),
        ActionRegistry::builtin(),
        4,
    );
    let self_healing = KernelSpec::new(
        "self_healing",
        SelfHealingKernel::factory(dispatcher.clone()),
    );
    let mut spec = SupervisorSpec::new("system", Strategy::OneForOne)
        .intensity(20, Duration::from_secs(30))
        .child(ChildSpec::kernel(
            kernel::<MessageBusKernel>("message_bus").critical(),
        ))
        .child(ChildSpec::kernel(
            kernel::<IncidentLogKernel>("incident_log").critical(),
        ))
        .child(ChildSpec::kernel(self_healing.critical()))
        .child(ChildSpec::kernel(
            kernel::<CodingAgentKernel>("coding_agent").critical(),
        ));
    for w in workers {
        spec = spec.child(ChildSpec::kernel(kernel::<Counter>(w)));
    }
    let sup = SupervisorHandle::start(spec, system.clone())
        .await
        .expect("tree starts");
    let hb = spawn_heartbeat(
        system.clone(),
        HeartbeatConfig {
            check_interval: Duration::from_millis(100),
            ..HeartbeatConfig::default()
        },
    );
    Tree {
        system,
        dispatcher,
        _sup: sup,
        _hb: hb,
        _dir: dir,
    }
}

impl Tree {
    fn status(&self, name: &str) -> Arc<KernelStatus> {
        self.system
            .registry
            .get(name)
            .expect("registered")
            .status
            .clone()
    }

    fn publish(&self, topic: Topic, draft: &IncidentDraft) {
        assert!(self.system.bus.emit(topic, Some(&draft.component), draft));
    }

    /// The incidents of `incidents.jsonl`, folded by id (the last line wins).
    fn incidents(&self) -> HashMap<String, Value> {
        let text = std::fs::read_to_string(self.system.paths.incidents()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Some((v["incident_id"].as_str()?.to_owned(), v)))
            .collect()
    }

    /// Waits until an incident of `component` is closed in the file; returns it.
    async fn closed(&self, component: &str) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self
                .incidents()
                .into_values()
                .find(|v| v["component"] == component && v["resolved_at"].is_string())
            {
                return v;
            }
            assert!(
                t0.elapsed() < WAIT,
                "no closed incident for {component}: {:?}",
                self.incidents()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn draft(trigger: &str, component: &str, details: Value) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.into(),
        component: component.into(),
        failure_mode: "heartbeat_failure".into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{component}: {trigger}"),
        details,
        detected_at: Some(grace::time::rfc3339(grace::time::now())),
    }
}

fn steps(inc: &Value) -> Vec<(String, String)> {
    inc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_on_the_bus_restarts_the_kernel_and_is_resolved_with_mttr() {
    let t = tree(&["worker"]).await;
    let worker = t.status("worker");
    assert_eq!(worker.restarts(), 0);
    t.publish(
        Topic::EventIncident,
        &draft("heartbeat_failure", "worker", json!({ "kernel": "worker" })),
    );
    let inc = t.closed("worker").await;
    assert_eq!(inc["status"], "resolved", "{inc}");
    assert_eq!(inc["playbook"], "restart_kernel");
    assert_eq!(inc["success"], true);
    assert!(
        inc["mttr_seconds"]
            .as_f64()
            .is_some_and(|m| m > 0.0 && m < 10.0),
        "{inc}"
    );
    assert_eq!(
        steps(&inc),
        [
            ("restart".into(), "ok".into()),
            ("verify".into(), "ok".into())
        ]
    );
    assert_eq!(worker.restarts(), 1, "restarted once, by the playbook");
    assert!(worker.state().is_up());
    assert_eq!(inc["details"]["remediation"]["slo_met"], true);
    let answer = t
        .system
        .registry
        .call(
            "worker",
            Request::new("get", Value::Null),
            Duration::from_secs(1),
        )
        .await
        .expect("the restarted worker answers");
    assert_eq!(answer, json!(1), "a fresh incarnation");
    let st = t.dispatcher.stats().snapshot();
    assert_eq!((st.runs, st.successes), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_its_supervisor_already_restarted_is_only_verified() {
    let t = tree(&["worker"]).await;
    let worker = t.status("worker");
    let d = draft("heartbeat_failure", "worker", Value::Null);
    // The fault comes after the detection time: the supervisor restarts the kernel
    // before the playbook gets to it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.system
        .registry
        .inject("worker", Fault::Panic)
        .expect("inject");
    let t0 = Instant::now();
    while worker.restarts() == 0 || !worker.state().is_up() {
        assert!(t0.elapsed() < WAIT, "supervisor restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.publish(Topic::EventIncident, &d);
    let inc = t.closed("worker").await;
    assert_eq!(inc["status"], "resolved", "{inc}");
    assert_eq!(
        steps(&inc),
        [
            ("restart".into(), "skipped".into()),
            ("verify".into(), "ok".into())
        ]
    );
    let reason = inc["steps"][0]["output"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("already restarted"), "{reason}");
    assert_eq!(worker.restarts(), 1, "no second restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_playbook_recovers_critical_kernels_and_survives_its_own_restart() {
    let t = tree(&["worker_a", "worker_b"]).await;
    t.system
        .registry
        .stop("coding_agent", Duration::from_secs(5))
        .await
        .expect("stop coding_agent");
    let agent = t.status("coding_agent");
    assert!(!agent.state().is_up());
    let self_healing = t.status("self_healing");
    let before = self_healing.restarts();
    t.publish(
        Topic::EventEmergency,
        &draft(
            "critical_heartbeat",
            "system",
            // As critical_heartbeat reports them: objects with the kernel's name.
            json!({ "count": 2, "down": [
                { "kernel": "coding_agent", "state": "stopped" },
                { "kernel": "self_healing", "state": "running" },
            ] }),
        ),
    );
    let inc = t.closed("system").await;
    assert_eq!(inc["playbook"], "emergency_critical_kernel_recovery");
    assert_eq!(inc["status"], "resolved", "{inc}");
    let s: HashMap<String, String> = steps(&inc).into_iter().collect();
    assert_eq!(s["restart_coding_agent"], "ok", "it was down");
    assert_eq!(s["restart_self_healing"], "ok", "it was named");
    assert_eq!(s["restart_message_bus"], "skipped", "up, fresh, not named");
    assert_eq!(s["restart_incident_log"], "skipped");
    for v in [
        "verify_message_bus",
        "verify_incident_log",
        "verify_self_healing",
        "verify_coding_agent",
        "check_kernels",
        "emergency_off",
        "record",
    ] {
        assert_eq!(s[v], "ok", "{v}: {inc}");
    }
    assert_eq!(
        steps(&inc).len(),
        14,
        "10 steps, 4 of them in the parallel group"
    );
    assert!(agent.state().is_up(), "coding_agent runs again");
    assert_eq!(
        self_healing.restarts(),
        before + 1,
        "the dispatcher itself was restarted mid-run"
    );
    assert!(!t.system.emergency(), "emergency mode is off again");
    assert_eq!(inc["details"]["remediation"]["slo_ms"], 120_000);
    assert_eq!(inc["details"]["remediation"]["slo_met"], true);

    // The restarted dispatcher still takes incidents from the same mailbox.
    t.publish(
        Topic::EventIncident,
        &draft("heartbeat_failure", "worker_a", Value::Null),
    );
    assert_eq!(t.closed("worker_a").await["status"], "resolved");
}
