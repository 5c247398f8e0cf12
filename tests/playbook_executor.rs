//! The executor against a real `System`: retries, timeouts, continue_on_failure,
//! parallel groups, templates, dry runs, SLO and the events it publishes. Time is
//! paused, so waits and timeouts cost nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::{Event, Topic};
use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::playbook::{
    parse_playbook, Action, ActionContext, ActionError, ActionRegistry, Args, Parsed, Run,
    RunReport,
};
use grace::state::StatePaths;
use grace::tree::System;
use serde_json::{json, Value};

/// Fails until it has been called `fail_first` times, then succeeds.
struct Flaky {
    fail_first: u32,
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl Action for Flaky {
    async fn run(&self, _: &ActionContext, _: &Args) -> Result<Value, ActionError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.fail_first {
            Err(ActionError::failed(format!("call {n} fails")))
        } else {
            Ok(json!({ "call": n }))
        }
    }
}

/// Sleeps for its `for` argument and counts its calls.
struct Sleep(Arc<AtomicU32>);

#[async_trait]
impl Action for Sleep {
    async fn run(&self, _: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let d = args.duration("for")?.unwrap_or_default();
        tokio::time::sleep(d).await;
        Ok(json!({ "slept_ms": d.as_millis() as u64 }))
    }
}

/// Returns its arguments.
struct Echo;

#[async_trait]
impl Action for Echo {
    async fn run(&self, _: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        Ok(Value::Object(args.map().clone()))
    }
}

struct Harness {
    system: Arc<System>,
    actions: Arc<ActionRegistry>,
    calls: Arc<AtomicU32>,
    sleeps: Arc<AtomicU32>,
    _dir: tempfile::TempDir,
}

fn harness(fail_first: u32) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let system =
        System::open(Arc::new(Config::default()), StatePaths::new(dir.path())).expect("system");
    let calls = Arc::new(AtomicU32::new(0));
    let sleeps = Arc::new(AtomicU32::new(0));
    let mut actions = ActionRegistry::builtin();
    actions
        .register(
            "flaky",
            Flaky {
                fail_first,
                calls: calls.clone(),
            },
        )
        .register("sleep", Sleep(sleeps.clone()))
        .register("echo", Echo);
    Harness {
        system,
        actions: Arc::new(actions),
        calls,
        sleeps,
        _dir: dir,
    }
}

fn incident() -> Incident {
    Incident {
        incident_id: "inc_20250101_000000_000001".into(),
        detected_at: grace::time::rfc3339(grace::time::now()),
        resolved_at: None,
        status: IncidentStatus::Open,
        failure_mode: "hang".into(),
        severity: Severity::High,
        component: "worker".into(),
        trigger: "heartbeat_failure".into(),
        playbook: None,
        steps: Vec::new(),
        mttr_seconds: None,
        success: None,
        occurrences: 1,
        summary: "worker hung".into(),
        details: Value::Null,
        closed_reason: None,
    }
}

impl Harness {
    async fn run(&self, yaml: &str, dry_run: bool) -> RunReport {
        let p = match parse_playbook("test.yaml", yaml, &self.actions).expect("valid") {
            Parsed::Loaded(p) => p,
            Parsed::Skipped(s) => panic!("skipped: {}", s.reason),
        };
        Run {
            system: self.system.clone(),
            actions: self.actions.clone(),
            playbook: Arc::new(p),
            incident: Arc::new(incident()),
            dry_run,
            budget: Arc::new(grace::playbook::harm::DisruptionBudget::new(1)),
        }
        .execute()
        .await
    }
}

fn statuses(r: &RunReport) -> Vec<(String, String, u32)> {
    r.steps
        .iter()
        .map(|s| (s.name.clone(), s.status.clone(), s.attempts))
        .collect()
}

fn st(name: &str, status: &str, attempts: u32) -> (String, String, u32) {
    (name.to_owned(), status.to_owned(), attempts)
}

#[tokio::test(start_paused = true)]
async fn a_step_is_retried_until_it_succeeds() {
    let h = harness(2);
    let t0 = tokio::time::Instant::now();
    let r = h
        .run("name: p\nsteps:\n  - name: a\n    action: flaky\n    retries: 2\n    retry_delay: 5s\n", false)
        .await;
    assert!(r.success);
    assert_eq!(statuses(&r), [st("a", "ok", 3)]);
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    assert_eq!(t0.elapsed(), Duration::from_secs(10), "two retry delays");
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_and_later_steps_are_not_run() {
    let h = harness(5);
    let r = h
        .run(
            "name: p\nsteps:\n  - name: a\n    action: flaky\n    retries: 1\n    retry_delay: 1s\n  - name: b\n    action: sleep\n",
            false,
        )
        .await;
    assert!(!r.success);
    assert_eq!(r.failed_step.as_deref(), Some("a"));
    assert_eq!(statuses(&r), [st("a", "failed", 2), st("b", "skipped", 0)]);
    assert_eq!(h.sleeps.load(Ordering::SeqCst), 0, "b never ran");
    let err = r.steps[0].output["error"].as_str().expect("error text");
    assert!(err.contains("call 2 fails"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_is_cut_and_retried() {
    let h = harness(0);
    let t0 = tokio::time::Instant::now();
    let r = h
        .run(
            "name: p\nsteps:\n  - name: slow\n    action: sleep\n    args: { for: 1h }\n    timeout: 2s\n    retries: 1\n    retry_delay: 1s\n",
            false,
        )
        .await;
    assert_eq!(statuses(&r), [st("slow", "timed_out", 2)]);
    assert!(!r.success);
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(5),
        "2 s + 1 s delay + 2 s"
    );
}

#[tokio::test(start_paused = true)]
async fn continue_on_failure_lets_the_run_go_on_and_succeed() {
    let h = harness(99);
    let r = h
        .run(
            "name: p\nsteps:\n  - name: a\n    action: flaky\n    continue_on_failure: true\n  - name: b\n    action: sleep\n",
            false,
        )
        .await;
    assert!(r.success);
    assert_eq!(statuses(&r), [st("a", "failed", 1), st("b", "ok", 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_parallel_group_runs_its_steps_at_once_and_waits_for_all() {
    let h = harness(99);
    let yaml = "name: p\nslo: 10s\nsteps:\n  - name: g\n    parallel:\n      - name: x\n        action: sleep\n        args: { for: 3s }\n      - name: y\n        action: sleep\n        args: { for: 2s }\n      - name: z\n        action: flaky\n        continue_on_failure: true\n  - name: after\n    action: echo\n";
    let t0 = tokio::time::Instant::now();
    let r = h.run(yaml, false).await;
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(3),
        "the longest, not the sum"
    );
    assert!(r.success);
    assert_eq!(h.sleeps.load(Ordering::SeqCst), 2);
    let names: Vec<_> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["z", "y", "x", "g", "after"], "in finishing order");
    let g = &r.steps[3];
    assert_eq!((g.action.as_str(), g.status.as_str()), ("parallel", "ok"));
    assert_eq!(r.slo_met, Some(true));

    let failing = yaml.replace("        continue_on_failure: true\n", "");
    let r = h.run(&failing, false).await;
    assert!(!r.success);
    assert_eq!(r.failed_step.as_deref(), Some("g"));
    let last = r.steps.last().expect("after");
    assert_eq!(
        (last.name.as_str(), last.status.as_str()),
        ("after", "skipped")
    );
}

#[tokio::test(start_paused = true)]
async fn arguments_are_expanded_from_the_incident() {
    let h = harness(0);
    let r = h
        .run(
            "name: p\nsteps:\n  - name: e\n    action: echo\n    args:\n      target: \"{{component}}\"\n      line: \"{{severity}} {{trigger}} {{failure_mode}} {{incident_id}}\"\n      list: [\"k-{{component}}\", 3]\n",
            false,
        )
        .await;
    assert_eq!(
        r.steps[0].output,
        json!({
            "target": "worker",
            "line": "high heartbeat_failure hang inc_20250101_000000_000001",
            "list": ["k-worker", 3],
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_records_every_step_and_runs_none() {
    let h = harness(0);
    let r = h
        .run(
            "name: p\nsteps:\n  - name: a\n    action: flaky\n  - name: g\n    parallel:\n      - name: s\n        action: sleep\n        args: { for: 1h }\n  - name: e\n    action: emergency_mode\n    args: { on: true }\n",
            true,
        )
        .await;
    assert!(r.dry_run && r.success);
    assert_eq!(
        h.calls.load(Ordering::SeqCst) + h.sleeps.load(Ordering::SeqCst),
        0
    );
    assert!(!h.system.emergency(), "emergency_mode was not switched");
    assert!(
        r.steps.iter().all(|s| s.status == "dry_run"),
        "{:?}",
        statuses(&r)
    );
    assert_eq!(r.steps[0].output["would_run"], "flaky");
}

#[tokio::test(start_paused = true)]
async fn a_run_over_its_slo_is_recorded_and_events_are_published() {
    let h = harness(0);
    let sub = h.system.bus.subscribe("test", &["playbook.*"]);
    let r = h
        .run(
            "name: slow_one\nslo: 1s\nsteps:\n  - name: s\n    action: sleep\n    args: { for: 2s }\n",
            false,
        )
        .await;
    assert!(r.success);
    assert_eq!((r.slo_ms, r.slo_met), (Some(1000), Some(false)));
    h.system.bus.pump(64, Duration::from_millis(10)).await;
    let events: Vec<Event> = std::iter::from_fn(|| sub.try_recv()).collect();
    let topics: Vec<Topic> = events.iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        [
            Topic::PlaybookStarted,
            Topic::PlaybookStep,
            Topic::PlaybookFinished
        ]
    );
    assert_eq!(events[1].payload["step"]["status"], "ok");
    let fin = &events[2].payload;
    assert_eq!(fin["playbook"], "slow_one");
    assert_eq!(fin["slo_met"], false);
    assert_eq!(fin["success"], true);
}
