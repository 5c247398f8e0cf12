//! The `triggers` supervisor: one kernel per enabled trigger, a user's own trigger,
//! and trigger kernels that restart without forgetting their conditions or their
//! bus mailbox.

mod trigger_support;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::Topic;
use grace::config::Config;
use grace::incident::Severity;
use grace::kernel::KernelContext;
use grace::supervisor::{ChildKind, Strategy};
use grace::trigger::{
    trigger_spec, triggers_supervisor, triggers_supervisor_with, Alert, Finding, Level, Rule,
    Trigger, TriggerError, TriggersConfig,
};
use trigger_support::{idle, is, only, Harness};

const S: Duration = Duration::from_secs(1);

fn kernel_children(s: &grace::supervisor::SupervisorSpec) -> Vec<(String, Duration)> {
    s.children
        .iter()
        .map(|c| match &c.kind {
            ChildKind::Kernel(k) => (k.name.clone(), k.heartbeat_interval),
            ChildKind::Supervisor(s) => panic!("unexpected supervisor {}", s.name),
        })
        .collect()
}

#[tokio::test]
async fn the_supervisor_has_one_kernel_per_enabled_trigger() {
    let h = Harness::new(Config::default()).await;
    let mut cfg: TriggersConfig = toml::from_str(
        r#"
        [scheduled]
        enabled = false
        [critical_heartbeat]
        interval = "2s"
        [[exec]]
        name = "ping"
        command = "true"
        playbook = "restart_service"
        "#,
    )
    .expect("config");
    let sup = triggers_supervisor(&h.system, &cfg);
    assert_eq!(
        (sup.name.as_str(), sup.strategy),
        ("triggers", Strategy::OneForOne)
    );
    let children = kernel_children(&sup);
    let names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "trigger.heartbeat_failure",
            "trigger.critical_heartbeat",
            "trigger.api_timeout",
            "trigger.kpi_threshold",
            "trigger.latency_queue",
            "trigger.resource_spike",
            "trigger.trust_score",
            "trigger.sandbox_failure",
            "trigger.event_anomaly",
            "trigger.config_drift",
            "trigger.model_integrity",
            "trigger.repeated_error",
            "trigger.exec.ping",
        ]
    );
    assert_eq!(
        children[1].1,
        2 * S,
        "the check interval is the heartbeat interval"
    );
    cfg.enabled = false;
    assert!(triggers_supervisor(&h.system, &cfg).children.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_trigger_keeps_its_conditions_and_its_mailbox() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.heartbeat_failure.enabled = true;
    t.heartbeat_failure.interval = S;
    h.register(&idle("stale", 10 * S));
    h.start_triggers(&t).await;
    h.wait_for(30 * S, |e, d| {
        is(e, d, Topic::EventIncident, "heartbeat_failure")
    })
    .await
    .expect("first incident");

    let triggers = h.triggers.as_ref().expect("started");
    triggers
        .terminate_child("trigger.heartbeat_failure")
        .await
        .expect("stopped");
    h.emit(
        Topic::KernelHeartbeatMissed,
        "other",
        serde_json::json!({"kernel": "other"}),
    );
    assert!(
        h.collect(3 * S).await.is_empty(),
        "nobody checks while it is down"
    );
    let triggers = h.triggers.as_ref().expect("started");
    triggers
        .force_restart("trigger.heartbeat_failure", "test")
        .await
        .expect("restarted");
    let got = h.collect(30 * S).await;
    let components: Vec<&str> = got.iter().map(|(_, d)| d.component.as_str()).collect();
    assert_eq!(
        components,
        ["other"],
        "the event that arrived while it was down is handled, and the condition it \
         already published is not published again"
    );
}

/// A user's trigger: a file that must not exist (a "maintenance needed" flag).
struct FlagFile(PathBuf);

#[async_trait]
impl Trigger for FlagFile {
    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        if !self.0.exists() {
            return Ok(Vec::new());
        }
        Ok(vec![Finding::Holds(Alert::new(
            Level::Incident,
            "flag_file",
            "storage",
            "flag_raised",
            Severity::Medium,
            Some("resource_cleanup"),
            format!("{} exists", self.0.display()),
        ))])
    }
}

#[tokio::test(start_paused = true)]
async fn a_library_users_trigger_runs_under_the_same_rule() {
    let mut h = Harness::new(Config::default()).await;
    let flag = h.dir.path().join("flag");
    let rule = Rule {
        interval: S,
        hold_for: 3 * S,
        ..Rule::default()
    };
    let f = flag.clone();
    let spec = trigger_spec("flag_file", rule, move || FlagFile(f.clone()));
    let sup = triggers_supervisor_with(&h.system, &only(), [spec.clone()]);
    assert_eq!(kernel_children(&sup), [("trigger.flag_file".to_owned(), S)]);

    h.start_triggers_with(&only(), [spec]).await;
    assert!(h.collect(5 * S).await.is_empty());
    std::fs::write(&flag, "").expect("flag");
    let raised = tokio::time::Instant::now();
    let (_, d) = h
        .wait_for(10 * S, |e, d| is(e, d, Topic::EventIncident, "flag_file"))
        .await
        .expect("fires");
    assert!(raised.elapsed() >= 3 * S, "after its `for`");
    assert_eq!(
        (d.component.as_str(), d.playbook.as_deref()),
        ("storage", Some("resource_cleanup"))
    );
}
