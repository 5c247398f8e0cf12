//! The `coding_agent` kernel on a real system: real kernel actors, a real state directory,
//! a real escalation command and a real webhook on loopback.
//!
//! The kernels run under `Harness`, a small supervisor actor that starts them, leaves a
//! failed kernel down (so a dependency stays down until someone restarts it) and carries
//! out `RestartChild` and `TerminateChild` requests with real respawns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use grace::audit::read_all;
use grace::bus::Topic;
use grace::config::Config;
use grace::diagnostics::{
    CodingAgentKernel, DiagnosticReport, DiagnosticsConfig, FixAction, RootCause,
};
use grace::kernel::{
    spawn_kernel, Fault, Kernel, KernelContext, KernelError, KernelSpec, KernelState, KernelStatus,
    Request,
};
use grace::state::StatePaths;
use grace::supervisor::SupervisorMsg;
use grace::tree::System;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::{json, Value};

/// A kernel whose hooks record that they ran.
#[derive(Default, Clone)]
struct Probe {
    shed: Arc<AtomicBool>,
    cleared: Arc<AtomicU32>,
}

struct ProbeKernel(Probe);

#[async_trait]
impl Kernel for ProbeKernel {
    async fn handle(&mut self, req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        Ok(json!({ "echo": req.op }))
    }
    async fn shed_load(&mut self, on: bool, _ctx: &KernelContext) -> Result<Value, KernelError> {
        self.0.shed.store(on, Ordering::SeqCst);
        Ok(json!({ "shedding": on }))
    }
    async fn clear_caches(&mut self, _ctx: &KernelContext) -> Result<Value, KernelError> {
        self.0.cleared.fetch_add(1, Ordering::SeqCst);
        Ok(json!({ "freed": 1 }))
    }
}

struct Harness;

struct HarnessState {
    system: Arc<System>,
    specs: HashMap<String, KernelSpec>,
}

async fn start_child(
    myself: &ActorRef<SupervisorMsg>,
    st: &HarnessState,
    name: &str,
) -> Result<(), ActorProcessingErr> {
    let spec = &st.specs[name];
    let entry = st.system.registry.get(name).ok_or("not registered")?;
    let actor = spawn_kernel(
        spec,
        entry.status.clone(),
        st.system.clone(),
        myself.clone(),
    )
    .await?;
    st.system.registry.set_actor(name, Some(actor));
    entry.status.set_state(KernelState::Running);
    Ok(())
}

async fn stop_child(st: &HarnessState, name: &str) {
    if let Some(a) = st.system.registry.get(name).and_then(|e| e.actor()) {
        st.system.registry.set_actor(name, None);
        let _ = a.stop_and_wait(None, Some(Duration::from_secs(5))).await;
    }
}

impl Actor for Harness {
    type Msg = SupervisorMsg;
    type State = HarnessState;
    type Arguments = (Arc<System>, Vec<KernelSpec>);

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        (system, specs): Self::Arguments,
    ) -> Result<HarnessState, ActorProcessingErr> {
        let st = HarnessState {
            system,
            specs: specs.iter().map(|s| (s.name.clone(), s.clone())).collect(),
        };
        for spec in &specs {
            st.system
                .registry
                .register(Arc::new(KernelStatus::new(spec)), myself.clone());
            start_child(&myself, &st, &spec.name).await?;
        }
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut HarnessState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::ForceRestart { id, reason, reply } => {
                stop_child(st, &id).await;
                if let Some(e) = st.system.registry.get(&id) {
                    e.status.record_restart(&reason);
                }
                let r = start_child(&myself, st, &id).await;
                if let Some(port) = reply {
                    let _ = port.send(r.map_err(|e| {
                        grace::supervisor::SupervisorError::NotRunning(e.to_string())
                    }));
                }
            }
            SupervisorMsg::TerminateChild(id, port) => {
                stop_child(st, &id).await;
                if let Some(e) = st.system.registry.get(&id) {
                    e.status.set_state(KernelState::Stopped);
                }
                let _ = port.send(Ok(()));
            }
            _ => {}
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut HarnessState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, _) = evt {
            for s in st.system.registry.statuses() {
                let current = st.system.registry.get(&s.name).and_then(|e| e.actor());
                if current.is_some_and(|a| a.get_id() == cell.get_id()) {
                    s.set_state(KernelState::Failed);
                    st.system.registry.set_actor(&s.name, None);
                }
            }
        }
        Ok(())
    }
}

struct Tree {
    system: Arc<System>,
    probe: Probe,
    _dir: tempfile::TempDir,
    harness: ActorRef<SupervisorMsg>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.harness.stop(None);
    }
}

async fn tree(diag: DiagnosticsConfig) -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        diagnostics: diag,
        ..Config::default()
    };
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let probe = Probe::default();
    let p = probe.clone();
    let specs = vec![
        KernelSpec::new("kv", Arc::new(|| Box::new(ProbeKernel(Probe::default())))).critical(),
        KernelSpec::new("worker", Arc::new(move || Box::new(ProbeKernel(p.clone())))),
        KernelSpec::new(
            "coding_agent",
            Arc::new(|| Box::new(CodingAgentKernel::default())),
        )
        .critical(),
    ];
    let (harness, _) = Actor::spawn(None, Harness, (system.clone(), specs))
        .await
        .expect("harness");
    Tree {
        system,
        probe,
        _dir: dir,
        harness,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn diagnose(t: &Tree, args: Value) -> DiagnosticReport {
    let v = t
        .system
        .registry
        .call(
            "coding_agent",
            Request::new("diagnose", args),
            Duration::from_secs(30),
        )
        .await
        .expect("diagnose");
    serde_json::from_value(v).expect("a report")
}

fn quiet() -> DiagnosticsConfig {
    // Resource limits at 100% so the host's load never decides these tests.
    DiagnosticsConfig {
        cpu_percent: 100.0,
        memory_percent: 100.0,
        disk_percent: 100.0,
        ..DiagnosticsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_dependency_is_restarted_first_and_the_report_is_written() {
    let t = tree(quiet()).await;
    let kv = t.system.registry.get("kv").expect("kv");
    t.system
        .registry
        .inject("kv", Fault::Panic)
        .expect("inject");
    wait_for("kv to fail", || kv.status.state() == KernelState::Failed).await;
    let sub = t.system.bus.subscribe("test", &["incident.*"]);

    let report = diagnose(
        &t,
        json!({ "component": "worker", "error": "kv: connection refused" }),
    )
    .await;
    assert_eq!(report.diagnosis.root_cause, RootCause::Dependency);
    assert!(report.diagnosis.confidence >= 0.8);
    assert_eq!(report.evidence.dependencies_down[0].name, "kv");
    assert!(report.evidence.resources.memory_total_bytes > 0);
    let applied: Vec<(&FixAction, bool)> = report
        .applied
        .iter()
        .map(|o| (&o.fix.action, o.ok))
        .collect();
    assert_eq!(
        applied,
        [
            (
                &FixAction::RestartDependency {
                    kernel: "kv".into()
                },
                true
            ),
            (
                &FixAction::RestartComponent {
                    kernel: "worker".into()
                },
                true
            ),
        ]
    );
    assert!(report.escalation.is_none(), "nothing left to escalate");
    // The dependency really runs again.
    assert!(kv.status.state().is_up());
    assert_eq!(kv.status.restarts(), 1);
    let pong = t
        .system
        .registry
        .call(
            "kv",
            Request::new("ping", Value::Null),
            Duration::from_secs(5),
        )
        .await
        .expect("kv answers");
    assert_eq!(pong["echo"], "ping");

    // The report on disk is the one answered.
    let name = report
        .path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("diag_") && name.ends_with("_worker.json"),
        "{name}"
    );
    assert_eq!(
        report.path.parent(),
        Some(t.system.paths.diagnostics_dir().as_path())
    );
    let on_disk = std::fs::read_to_string(&report.path).expect("report file");
    assert_eq!(
        on_disk,
        serde_json::to_string_pretty(&report).expect("json")
    );

    let kinds: Vec<String> = read_all(&t.system.paths.audit_log())
        .expect("audit")
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        ["diagnostics.fix", "diagnostics.fix", "diagnostics.report"]
    );
    t.system.bus.pump(64, Duration::from_millis(20)).await;
    assert!(sub.try_recv().is_none(), "no escalation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_sheds_load_and_clears_caches_of_the_component() {
    let t = tree(DiagnosticsConfig {
        memory_percent: 0.0,
        ..quiet()
    })
    .await;
    let report = diagnose(&t, json!({ "component": "worker" })).await;
    assert_eq!(report.diagnosis.root_cause, RootCause::Resource);
    assert!(t.probe.shed.load(Ordering::SeqCst), "load shedding enabled");
    assert_eq!(t.probe.cleared.load(Ordering::SeqCst), 1);
    assert!(report.applied.iter().all(|o| o.ok), "{:?}", report.applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_fixes_are_escalated_through_the_command_and_the_event() {
    let out = tempfile::tempdir().expect("tempdir");
    let copy = out.path().join("escalated.json");
    let env = out.path().join("env");
    let t = tree(DiagnosticsConfig {
        escalate_command: Some(format!(
            "cp \"$GRACE_DIAGNOSTIC_REPORT\" '{}' && echo \"$GRACE_COMPONENT $GRACE_ROOT_CAUSE $GRACE_INCIDENT_ID\" > '{}'",
            copy.display(),
            env.display()
        )),
        ..quiet()
    })
    .await;
    let sub = t.system.bus.subscribe("test", &["incident.escalated"]);
    let report = diagnose(
        &t,
        json!({
            "component": "worker",
            "incident_id": "inc_20250101_000000_000001",
            "error": "panic: called `Option::unwrap()` on a `None` value"
        }),
    )
    .await;
    assert_eq!(report.diagnosis.root_cause, RootCause::Code);
    let esc = report.escalation.clone().expect("escalated");
    assert!(matches!(esc.fixes[0].action, FixAction::FixCode { .. }));
    assert_eq!(esc.channels.len(), 1);
    assert!(esc.channels[0].ok, "{:?}", esc.channels);
    let copied: DiagnosticReport =
        serde_json::from_slice(&std::fs::read(&copy).expect("the command ran")).expect("json");
    assert_eq!(copied.report_id, report.report_id);
    assert_eq!(
        std::fs::read_to_string(&env).expect("env").trim(),
        "worker code inc_20250101_000000_000001"
    );
    // The final report records the escalation.
    let on_disk: DiagnosticReport =
        serde_json::from_slice(&std::fs::read(&report.path).expect("report")).expect("json");
    assert_eq!(on_disk.escalation, Some(esc));
    assert_eq!(on_disk.report_id, report.report_id);

    t.system.bus.pump(64, Duration::from_millis(100)).await;
    let e = sub.try_recv().expect("incident.escalated published");
    assert_eq!(e.topic, Topic::IncidentEscalated);
    assert_eq!(e.payload["root_cause"], "code");
    assert_eq!(e.payload["incident_id"], "inc_20250101_000000_000001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_posted_to_the_webhook_and_safe_fixes_wait_when_auto_apply_is_off() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(4);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let t = tree(DiagnosticsConfig {
        auto_apply_safe: false,
        escalate_webhook: Some(format!("http://{addr}/hook")),
        ..quiet()
    })
    .await;
    let kv = t.system.registry.get("kv").expect("kv");
    t.system
        .registry
        .inject("kv", Fault::Panic)
        .expect("inject");
    wait_for("kv to fail", || kv.status.state() == KernelState::Failed).await;

    let report = diagnose(
        &t,
        json!({ "component": "worker", "error": "kv timed out" }),
    )
    .await;
    assert_eq!(report.diagnosis.root_cause, RootCause::Dependency);
    assert!(report.applied.is_empty(), "auto_apply_safe = false");
    assert_eq!(
        kv.status.state(),
        KernelState::Failed,
        "left down for a human"
    );
    let esc = report.escalation.expect("escalated");
    assert_eq!(esc.fixes.len(), 2);
    assert!(esc.channels[0].ok, "{:?}", esc.channels);
    let body = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("posted")
        .expect("body");
    assert_eq!(body["report_id"], json!(report.report_id));
    assert_eq!(body["diagnosis"]["root_cause"], "dependency");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_answered_without_failing_the_kernel() {
    let t = tree(quiet()).await;
    let err = t
        .system
        .registry
        .call(
            "coding_agent",
            Request::new("diagnose", json!({ "komponent": "x" })),
            Duration::from_secs(5),
        )
        .await
        .expect_err("bad request");
    assert!(err.to_string().contains("component"), "{err}");
    let agent = t.system.registry.get("coding_agent").expect("agent");
    assert!(agent.status.state().is_up());
    assert_eq!(agent.status.restarts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_comes_from_the_incident_and_recent_drift_in_the_store() {
    use grace::incident::{IncidentDraft, Severity};
    let t = tree(quiet()).await;
    let draft = |trigger: &str, details: Value| IncidentDraft {
        trigger: trigger.into(),
        component: "worker".into(),
        failure_mode: trigger.into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{trigger} on worker"),
        details,
        detected_at: None,
    };
    t.system
        .incidents
        .open(draft("config_drift", json!({ "file": "worker.toml" })))
        .expect("drift");
    let id = t
        .system
        .incidents
        .open(draft(
            "repeated_error",
            json!({ "error": "invalid value for batch_size in worker.toml" }),
        ))
        .expect("open")
        .incident_id()
        .to_owned();
    let report = diagnose(&t, json!({ "component": "worker", "incident_id": id })).await;
    assert_eq!(
        report.evidence.error.as_deref(),
        Some("invalid value for batch_size in worker.toml")
    );
    assert_eq!(report.evidence.incidents.len(), 2);
    assert_eq!(report.evidence.drift.len(), 1);
    assert_eq!(report.diagnosis.root_cause, RootCause::Configuration);
    assert!(report.applied.is_empty());
    assert!(matches!(
        report.escalation.expect("escalated").fixes[0].action,
        FixAction::RestoreConfiguration { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_escalation_command_is_killed_at_its_timeout() {
    let t = tree(DiagnosticsConfig {
        escalate_command: Some("sleep 30".into()),
        escalate_timeout: Duration::from_millis(200),
        ..quiet()
    })
    .await;
    let t0 = Instant::now();
    let report = diagnose(&t, json!({ "component": "worker", "error": "panic: boom" })).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    let c = &report
        .escalation
        .clone()
        .unwrap_or_else(|| panic!("{report:?}"))
        .channels[0];
    assert!(!c.ok);
    assert!(c.detail.contains("killed"), "{}", c.detail);
}
