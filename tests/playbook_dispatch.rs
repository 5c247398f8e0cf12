//! The dispatcher against a real `System` and real files: it opens incidents, runs the
//! chosen playbook, enforces rate limits, the concurrency bound, dry runs and
//! approval, verifies recovery, escalates failures, and closes each incident in
//! `incidents.jsonl`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::{Event, Topic};
use grace::config::Config;
use grace::incident::{IncidentDraft, Severity};
use grace::playbook::{
    parse_playbook, Action, ActionContext, ActionError, ActionRegistry, Args, Dispatched,
    Dispatcher, Parsed,
};
use grace::state::StatePaths;
use grace::tree::System;
use serde_json::{json, Value};

/// Counts its calls, tracks how many run at once, sleeps `for`, fails if `fail`; and
/// the service's health, which the `health` action reports to verification.
#[derive(Default)]
struct Probe {
    calls: AtomicU32,
    now: AtomicU32,
    max: AtomicU32,
    sick: AtomicBool,
    checks: AtomicU32,
}

/// `health`: fails while the probe's service is sick.
struct HealthAction(Arc<Probe>);

#[async_trait]
impl Action for HealthAction {
    async fn run(&self, _: &ActionContext, _: &Args) -> Result<Value, ActionError> {
        self.0.checks.fetch_add(1, Ordering::SeqCst);
        if self.0.sick.load(Ordering::SeqCst) {
            return Err(ActionError::failed("service does not answer"));
        }
        Ok(json!({ "answers": true }))
    }
}

struct ProbeAction(Arc<Probe>);

#[async_trait]
impl Action for ProbeAction {
    async fn run(&self, _: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let p = &self.0;
        p.calls.fetch_add(1, Ordering::SeqCst);
        let n = p.now.fetch_add(1, Ordering::SeqCst) + 1;
        p.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(args.duration("for")?.unwrap_or_default()).await;
        p.now.fetch_sub(1, Ordering::SeqCst);
        if args.bool("fail")?.unwrap_or(false) {
            return Err(ActionError::failed("probe told to fail"));
        }
        Ok(json!({ "probed": true }))
    }
}

/// Verification through the `health` action.
const VERIFY: &str = "verify:\n  steps:\n    - name: v\n      action: health\n";

const PLAYBOOKS: &[&str] = &[
    "name: limited\ntriggers: [limited]\nrate_limit: { max: 2, window: 1h }\nsteps:\n  - name: p\n    action: probe\n",
"name: cooled\ntriggers: [cooled]\ncooldown: 1h\nsteps:\n  - name: p\n    action: probe\n",
    "name: slow\ntriggers: [slow]\nsteps:\n  - name: p\n    action: probe\n    args: { for: 150ms }\n",
    "name: broken\ntriggers: [broken]\nsteps:\n  - name: p\n    action: probe\n    args: { fail: true }\n",
    "name: guarded\ntriggers: [guarded]\nrequires_approval: true\nsteps:\n  - name: p\n    action: probe\n",
    "name: rehearsal\ntriggers: [rehearsal]\ndry_run: true\nsteps:\n  - name: p\n    action: probe\n",
    "name: late\ntriggers: [late]\nslo: 50ms\nsteps:\n  - name: p\n    action: probe\n    args: { for: 100ms }\n",
    "name: idle\ntriggers: [idle]\nsteps:\n  - name: p\n    action: wait\n    args: { duration: 1ms }\n",
];

/// A playbook without `verify:` steps, for a component nothing can probe.
const BLIND: &str = "name: blind\ntriggers: [blind]\nsteps:\n  - name: p\n    action: probe\n";

/// Verification fast enough for tests: two good samples 20 ms apart, give up at 1 s.
fn config() -> Config {
    let mut c = Config::default();
    c.playbooks.verify = grace::playbook::VerifySettings {
        interval: Duration::from_millis(10),
        successes: 2,
        window: Duration::from_millis(20),
        timeout: Duration::from_secs(1),
    };
    c
}

struct Setup {
    system: Arc<System>,
    dispatcher: Arc<Dispatcher>,
    probe: Arc<Probe>,
    dir: tempfile::TempDir,
}

fn setup(config: Config) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let max = config.playbooks.max_concurrent;
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let probe = Arc::new(Probe::default());
    let mut actions = ActionRegistry::builtin();
    actions.register("probe", ProbeAction(probe.clone()));
    actions.register("health", HealthAction(probe.clone()));
    let d = tempfile::tempdir().expect("tempdir");
    let texts = PLAYBOOKS
        .iter()
        .map(|t| format!("{t}{VERIFY}"))
        .chain([BLIND.to_owned()]);
    for (i, text) in texts.enumerate() {
        let text = text.as_str();
        assert!(matches!(
            parse_playbook("t.yaml", text, &actions),
            Ok(Parsed::Loaded(_))
        ));
        std::fs::write(d.path().join(format!("{i}.yaml")), text).expect("write");
    }
    let set =
        grace::playbook::load_playbooks_with(Some(d.path()), &actions).expect("playbooks load");
    let dispatcher = Dispatcher::new(set, actions, max);
    Setup {
        system,
        dispatcher,
        probe,
        dir,
    }
}

fn draft(trigger: &str, component: &str) -> Event {
    let d = IncidentDraft {
        trigger: trigger.into(),
        component: component.into(),
        failure_mode: "test_failure".into(),
        severity: Severity::Medium,
        playbook: None,
        summary: format!("{trigger} on {component}"),
        details: Value::Null,
        detected_at: None,
    };
    Event::new(Topic::EventIncident, Some(component), d)
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// The incidents of `incidents.jsonl`, folded by id (the last record wins).
fn incidents(s: &Setup) -> HashMap<String, Value> {
    let text = std::fs::read_to_string(s.system.paths.incidents()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v["incident_id"].as_str()?.to_owned(), v)))
        .collect()
}

fn closed(s: &Setup) -> usize {
    incidents(s)
        .values()
        .filter(|v| v["resolved_at"].is_string())
        .count()
}

async fn settle(s: &Setup, n: usize) {
    assert!(
        eventually(Duration::from_secs(5), || closed(s) >= n
            && s.dispatcher.stats().running() == 0)
        .await,
        "{n} incidents closed; file: {:?}",
        incidents(s)
    );
}

fn id(d: &Dispatched) -> String {
    match d {
        Dispatched::Started { incident_id, .. }
        | Dispatched::Escalating { incident_id, .. }
        | Dispatched::Repeat { incident_id } => incident_id.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_successful_run_resolves_the_incident_with_mttr() {
    let s = setup(config());
    let d = s.dispatcher.dispatch(&s.system, &draft("limited", "c1"));
    assert!(matches!(&d, Dispatched::Started { playbook, .. } if playbook == "limited"));
    settle(&s, 1).await;
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["status"], "resolved");
    assert_eq!(inc["closed_reason"], "verified");
    assert_eq!(inc["success"], true);
    let verification = &inc["details"]["remediation"]["verification"];
    assert!(
        verification["samples"].as_u64().is_some_and(|n| n >= 2),
        "{inc}"
    );
    assert_eq!(inc["playbook"], "limited");
    assert!(
        inc["mttr_seconds"].as_f64().is_some_and(|m| m >= 0.0),
        "{inc}"
    );
    assert_eq!(inc["steps"][0]["status"], "ok");
    assert_eq!(inc["details"]["remediation"]["playbook"], "limited");
    assert!(
        inc["details"]["remediation"]["duration_ms"].is_u64(),
        "{inc}"
    );
    let st = s.dispatcher.stats().snapshot();
    assert_eq!((st.runs, st.successes, st.failures), (1, 1, 0));
    assert_eq!(
        s.system.trust.score("c1"),
        1.0,
        "a reward at the top stays at 1"
    );

    s.system.audit.sync().expect("audit durable");
    let kinds: Vec<String> = grace::audit::read_all(&s.system.paths.audit_log())
        .expect("audit log")
        .into_iter()
        .map(|r| r.kind)
        .collect();
    for k in [
        "incident.opened",
        "incident.mitigating",
        "incident.status",
        "playbook.step",
        "playbook.run",
        "incident.resolved",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    assert!(grace::audit::verify(&s.system.paths.audit_log())
        .expect("verify")
        .ok());
}

#[tokio::test]
async fn a_run_over_its_slo_is_recorded_as_missed_in_the_incident() {
    let s = setup(config());
    let d = s.dispatcher.dispatch(&s.system, &draft("late", "c1"));
    settle(&s, 1).await;
    let rem = &incidents(&s)[&id(&d)]["details"]["remediation"];
    assert_eq!(
        (rem["slo_ms"].as_u64(), rem["slo_met"].as_bool()),
        (Some(50), Some(false)),
        "{rem}"
    );
    assert_eq!(s.dispatcher.stats().snapshot().slo_missed, 1);
}

#[tokio::test]
async fn an_incident_back_during_the_cooldown_is_escalated_and_lowers_trust() {
    let s = setup(config());
    let first = s.dispatcher.dispatch(&s.system, &draft("cooled", "c1"));
    assert!(matches!(first, Dispatched::Started { .. }));
    settle(&s, 1).await;
    assert_eq!(s.system.trust.score("c1"), 1.0);
    let again = s.dispatcher.dispatch(&s.system, &draft("cooled", "c1"));
    assert!(
        matches!(&again, Dispatched::Escalating { reason, .. } if reason.contains("cooling down")),
        "{again:?}"
    );
    settle(&s, 2).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 1, "no second run");
    let lowered = 1.0 - s.system.config.trust.repeat_penalty;
    assert!(
        (s.system.trust.score("c1") - lowered).abs() < 1e-9,
        "{}",
        s.system.trust.score("c1")
    );
    assert_eq!(
        s.system.trust.score("c2"),
        1.0,
        "other components keep theirs"
    );
}

#[tokio::test]
async fn a_rate_limited_playbook_does_not_run_past_its_limit() {
    let s = setup(config());
    let outcomes: Vec<Dispatched> = (0..4)
        .map(|i| {
            s.dispatcher
                .dispatch(&s.system, &draft("limited", &format!("c{i}")))
        })
        .collect();
    let started = outcomes
        .iter()
        .filter(|d| matches!(d, Dispatched::Started { .. }))
        .count();
    assert_eq!(started, 2);
    settle(&s, 4).await;
    assert_eq!(
        s.probe.calls.load(Ordering::SeqCst),
        2,
        "only two runs acted"
    );
    let st = s.dispatcher.stats().snapshot();
    assert_eq!((st.runs, st.rate_limited), (2, 2));
    assert_eq!(st.per_playbook["limited"].rate_limited, 2);
    let escalated = incidents(&s)
        .values()
        .filter(|v| v["status"] == "escalated")
        .count();
    assert_eq!(escalated, 2, "refused runs are handed to a human");
}

#[tokio::test]
async fn runs_beyond_max_concurrent_wait_their_turn() {
    let mut cfg = config();
    cfg.playbooks.max_concurrent = 1;
    let s = setup(cfg);
    for i in 0..3 {
        s.dispatcher
            .dispatch(&s.system, &draft("slow", &format!("c{i}")));
    }
    settle(&s, 3).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 3);
    assert_eq!(s.probe.max.load(Ordering::SeqCst), 1, "never two at once");
}

#[tokio::test]
async fn a_failing_playbook_fails_its_incident_escalates_and_lowers_trust() {
    let s = setup(config());
    s.probe.sick.store(true, Ordering::SeqCst);
    let sub = s
        .system
        .bus
        .subscribe("test", &["trust.score.update", "incident.*"]);
    let d = s.dispatcher.dispatch(&s.system, &draft("broken", "db"));
    settle(&s, 1).await;
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["status"], "failed", "{inc}");
    assert_eq!(inc["closed_reason"], "remediation_failed", "{inc}");
    assert_eq!(inc["success"], false);
    assert_eq!(inc["steps"][0]["status"], "failed");
    s.system.bus.pump(64, Duration::from_millis(10)).await;
    let events: Vec<Event> = std::iter::from_fn(|| sub.try_recv()).collect();
    let trust = events
        .iter()
        .find(|e| e.topic == Topic::TrustScoreUpdate)
        .expect("trust update");
    assert!(
        trust.payload["score"].as_f64().is_some_and(|x| x < 1.0),
        "{}",
        trust.payload
    );
    assert!(events
        .iter()
        .any(|e| e.topic == Topic::IncidentResolved && e.payload["status"] == "failed"));
    let alerts: Vec<String> = std::fs::read_dir(s.dir.path().join("alerts"))
        .expect("alerts dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(
        alerts.iter().any(|f| f.starts_with("critical_")),
        "{alerts:?}"
    );
    assert_eq!(s.dispatcher.stats().snapshot().failures, 1);
}

#[tokio::test]
async fn dry_run_and_approval_do_nothing_and_escalate() {
    let s = setup(config());
    let a = s.dispatcher.dispatch(&s.system, &draft("rehearsal", "x"));
    let b = s.dispatcher.dispatch(&s.system, &draft("guarded", "x"));
    assert!(matches!(b, Dispatched::Escalating { .. }));
    settle(&s, 2).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 0, "nothing acted");
    let all = incidents(&s);
    assert_eq!(all[&id(&a)]["status"], "escalated");
    assert_eq!(all[&id(&a)]["steps"][0]["status"], "dry_run");
    assert_eq!(all[&id(&b)]["status"], "escalated");
    assert!(all[&id(&b)]["details"]["remediation"]["not_run"]
        .as_str()
        .is_some_and(|r| r.contains("requires approval")));
}

#[tokio::test]
async fn the_global_dry_run_switch_covers_every_playbook() {
    let mut cfg = config();
    cfg.playbooks.dry_run = true;
    let s = setup(cfg);
    s.dispatcher.dispatch(&s.system, &draft("limited", "x"));
    settle(&s, 1).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_repeat_while_open_only_counts() {
    let s = setup(config());
    let first = s.dispatcher.dispatch(&s.system, &draft("slow", "k"));
    let again = s.dispatcher.dispatch(&s.system, &draft("slow", "k"));
    assert_eq!(
        again,
        Dispatched::Repeat {
            incident_id: id(&first)
        }
    );
    settle(&s, 1).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.dispatcher.stats().snapshot().repeats, 1);
}

#[tokio::test]
async fn an_incident_no_playbook_answers_is_escalated() {
    let s = setup(config());
    let d = s
        .dispatcher
        .dispatch(&s.system, &draft("no_such_trigger", "k"));
    assert!(matches!(&d, Dispatched::Escalating { reason, .. } if reason.contains("no playbook")));
    settle(&s, 1).await;
    assert_eq!(incidents(&s)[&id(&d)]["status"], "escalated");
    assert_eq!(s.dispatcher.stats().snapshot().unmatched, 1);
}

#[tokio::test]
async fn a_flapping_warning_is_escalated_and_never_remediated() {
    let s = setup(config());
    // "slow" has a playbook; the flapping warning of the same condition must not run it.
    let mut d: IncidentDraft = serde_json::from_value(draft("slow", "k").payload).expect("draft");
    d.failure_mode = grace::trigger::flap::FLAPPING.into();
    let ev = Event::new(Topic::EventEarlyWarning, Some("k"), d);
    let out = s.dispatcher.dispatch(&s.system, &ev);
    assert!(
        matches!(&out, Dispatched::Escalating { reason, .. } if reason.contains("flapping")),
        "{out:?}"
    );
    settle(&s, 1).await;
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 0, "nothing acted");
    assert_eq!(incidents(&s)[&id(&out)]["status"], "escalated");
}

#[tokio::test]
async fn a_run_that_did_its_steps_but_left_the_service_down_fails_with_the_reason() {
    let s = setup(config());
    s.probe.sick.store(true, Ordering::SeqCst);
    let d = s.dispatcher.dispatch(&s.system, &draft("limited", "web"));
    settle(&s, 1).await;
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["steps"][0]["status"], "ok", "the step itself worked");
    assert_eq!(inc["status"], "failed", "{inc}");
    assert_eq!(inc["closed_reason"], "verification_failed", "{inc}");
    assert!(
        inc["details"]["remediation"]["verification"]["failure"]
            .as_str()
            .is_some_and(|f| f.contains("service does not answer")),
        "{inc}"
    );
    assert!(s.system.trust.score("web") < 1.0, "a failure costs trust");
    let st = s.dispatcher.stats().snapshot();
    assert_eq!((st.successes, st.failures), (0, 1));
}

#[tokio::test]
async fn recovery_is_dated_to_the_first_good_sample_of_the_streak() {
    let s = setup(config());
    s.probe.sick.store(true, Ordering::SeqCst);
    let d = s.dispatcher.dispatch(&s.system, &draft("limited", "web"));
    assert!(
        eventually(Duration::from_secs(2), || s
            .probe
            .checks
            .load(Ordering::SeqCst)
            >= 3)
        .await
    );
    let healed = chrono::Utc::now();
    s.probe.sick.store(false, Ordering::SeqCst);
    settle(&s, 1).await;
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["status"], "resolved", "{inc}");
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(inc[k].as_str().expect("time")).expect("rfc3339")
    };
    assert!(
        at("resolved_at") >= healed,
        "recovered after the fault ended: {inc}"
    );
    let mttr = inc["mttr_seconds"].as_f64().expect("mttr");
    let span = (at("resolved_at") - at("detected_at"))
        .num_microseconds()
        .expect("us") as f64
        / 1e6;
    assert!(
        (mttr - span).abs() < 1e-3,
        "MTTR is detection to verified recovery: {inc}"
    );
}

#[tokio::test]
async fn a_run_that_did_nothing_is_not_a_success_even_when_the_service_is_fine() {
    let s = setup(config());
    let d = s.dispatcher.dispatch(&s.system, &draft("idle", "web"));
    settle(&s, 1).await;
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["status"], "resolved", "{inc}");
    assert_eq!(inc["closed_reason"], "recovered_without_action", "{inc}");
    assert_eq!(inc["details"]["remediation"]["acted"], false);
}

#[tokio::test]
async fn an_incident_nothing_can_verify_is_handed_to_a_human_not_resolved() {
    let s = setup(config());
    let d = s.dispatcher.dispatch(&s.system, &draft("blind", "nowhere"));
    assert!(matches!(d, Dispatched::Started { .. }), "{d:?}");
    assert!(
        eventually(Duration::from_secs(5), || closed(&s) >= 1).await,
        "{:?}",
        incidents(&s)
    );
    let inc = &incidents(&s)[&id(&d)];
    assert_eq!(inc["status"], "escalated", "{inc}");
    assert_eq!(inc["closed_reason"], "unverified", "{inc}");
}

#[tokio::test]
async fn an_informational_draft_opens_no_incident_and_runs_nothing() {
    let s = setup(config());
    let mut d: IncidentDraft =
        serde_json::from_value(draft("limited", "host").payload).expect("draft");
    d.details = json!({ "informational": true, "reason": "nothing Grace runs can shed load" });
    let out = s.dispatcher.dispatch(
        &s.system,
        &Event::new(Topic::EventIncident, Some("host"), d),
    );
    assert!(
        matches!(&out, Dispatched::Informational { reason } if reason.contains("shed")),
        "{out:?}"
    );
    assert!(incidents(&s).is_empty());
    assert_eq!(s.probe.calls.load(Ordering::SeqCst), 0);
    let alerts: Vec<String> = std::fs::read_dir(s.dir.path().join("alerts"))
        .expect("alerts dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(alerts.iter().any(|f| f.starts_with("info_")), "{alerts:?}");
}
