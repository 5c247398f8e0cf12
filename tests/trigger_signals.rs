//! Triggers fed by signals of the running system: ApiSignals (api_timeout,
//! kpi_threshold), a worker pool's stats (latency_queue), and bus events
//! (event_anomaly, repeated_error, sandbox_failure, trust_score).

mod trigger_support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::Topic;
use grace::config::Config;
use grace::kernel::{Isolation, Kernel, KernelContext, KernelError, KernelSpec, Request};
use serde_json::{json, Value};
use trigger_support::{idle, is, only, Harness};

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn five_timeouts_in_a_window_are_an_incident_four_are_not() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.api_timeout.enabled = true;
    t.api_timeout.interval = S;
    t.api_timeout.window = 10 * S;
    h.start_triggers(&t).await;
    let api = h.system.api.clone();
    for _ in 0..4 {
        api.record(Duration::from_secs(30), true);
        api.record(Duration::from_millis(5), false);
    }
    assert!(h.collect(5 * S).await.is_empty(), "4 timeouts stay quiet");
    // Past the window, the four are forgotten: five more are needed, and five suffice.
    tokio::time::sleep(10 * S).await;
    assert!(h.collect(2 * S).await.is_empty());
    for _ in 0..5 {
        api.record(Duration::from_secs(30), true);
    }
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "api_timeout"))
        .await
        .expect("incident");
    assert_eq!(
        (
            d.component.as_str(),
            d.failure_mode.as_str(),
            d.playbook.as_deref()
        ),
        ("serve", "api_timeout", Some("restart_service"))
    );
    assert_eq!(d.details["timeouts"], 5);
}

#[tokio::test(start_paused = true)]
async fn a_slow_p95_fires_only_after_holding_for_its_duration() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.kpi_threshold.enabled = true;
    t.kpi_threshold.interval = S;
    t.kpi_threshold.window = 5 * S;
    t.kpi_threshold.hold_for = 20 * S;
    h.start_triggers(&t).await;
    let api = h.system.api.clone();
    // Slow traffic: 1 in 10 requests fast, p95 = 1500 ms, sustained.
    let feeder = tokio::spawn(async move {
        let mut tick = tokio::time::interval(S / 10);
        let mut i = 0u64;
        loop {
            tick.tick().await;
            i += 1;
            let ms = if i % 10 == 0 { 20 } else { 1500 };
            api.record(Duration::from_millis(ms), false);
        }
    });
    let started = tokio::time::Instant::now();
    let (_, d) = h
        .wait_for(60 * S, |e, d| {
            is(e, d, Topic::EventIncident, "kpi_threshold")
        })
        .await
        .expect("incident");
    feeder.abort();
    assert!(
        started.elapsed() >= 20 * S,
        "fired after {:?}",
        started.elapsed()
    );
    assert_eq!(d.playbook.as_deref(), Some("performance_optimization"));
    assert_eq!(d.details["p95_ms"], 1500.0);
    assert_eq!(d.details["threshold_ms"], 1000.0);

    // Fast traffic is quiet.
    let api = h.system.api.clone();
    tokio::time::sleep(6 * S).await;
    for _ in 0..100 {
        api.record(Duration::from_millis(40), false);
    }
    assert!(h.collect(30 * S).await.is_empty());
}

/// A pool whose backlog the test sets.
struct Pool(Arc<std::sync::atomic::AtomicU64>);

#[async_trait]
impl Kernel for Pool {
    async fn handle(&mut self, _r: Request, _c: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }
    fn stats(&self) -> Value {
        json!({ "backlog": self.0.load(std::sync::atomic::Ordering::Relaxed), "workers": 2 })
    }
}

#[tokio::test(start_paused = true)]
async fn a_backlog_above_its_limit_for_its_window_asks_for_workers() {
    let mut h = Harness::new(Config::default()).await;
    let backlog = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let b = backlog.clone();
    h.start_kernel(KernelSpec::new(
        "pool",
        Arc::new(move || Box::new(Pool(b.clone()))),
    ))
    .await;
    h.start_kernel(idle("kv", 60 * S)).await;
    let mut t = only();
    t.latency_queue.enabled = true;
    t.latency_queue.interval = S;
    t.latency_queue.hold_for = 5 * S;
    t.latency_queue.backlog_limit = 100;
    h.start_triggers(&t).await;
    backlog.store(50, std::sync::atomic::Ordering::Relaxed);
    assert!(h.collect(10 * S).await.is_empty());
    backlog.store(500, std::sync::atomic::Ordering::Relaxed);
    let (_, d) = h
        .wait_for(20 * S, |e, d| {
            is(e, d, Topic::EventIncident, "latency_queue")
        })
        .await
        .expect("incident");
    assert_eq!(
        (
            d.component.as_str(),
            d.failure_mode.as_str(),
            d.playbook.as_deref()
        ),
        ("pool", "queue_backlog", Some("scale_workers"))
    );
    assert_eq!(d.details["backlog"], 500);
}

#[tokio::test(start_paused = true)]
async fn an_error_burst_above_the_baseline_runs_diagnostics() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.event_anomaly.enabled = true;
    t.event_anomaly.interval = S;
    t.event_anomaly.bucket = 10 * S;
    t.event_anomaly.floor = 5;
    h.start_triggers(&t).await;
    // A steady trickle: one error every 4 s is the baseline.
    for _ in 0..10 {
        h.emit(Topic::KernelError, "worker", json!({"error": "disk full"}));
        assert!(h.collect(4 * S).await.is_empty(), "a trickle is normal");
    }
    for i in 0..40 {
        h.emit(
            Topic::KernelError,
            "worker",
            json!({"error": format!("boom {i}")}),
        );
    }
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "event_anomaly")
        })
        .await
        .expect("burst");
    assert_eq!(
        (
            d.component.as_str(),
            d.failure_mode.as_str(),
            d.playbook.as_deref()
        ),
        ("system", "error_burst", Some("run_diagnostics"))
    );
    assert!(d.details["events"].as_u64().is_some_and(|n| n >= 40));
    assert_eq!(
        d.details["by_component"]["worker"]
            .as_u64()
            .map(|n| n >= 40),
        Some(true)
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_error_three_times_is_escalated() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.repeated_error.enabled = true;
    t.repeated_error.interval = S;
    t.repeated_error.window = 60 * S;
    h.start_triggers(&t).await;
    let reasons = [
        "panic: connection 17 refused by 10.0.0.3:5432",
        "panic: index out of range",
        "panic: connection 18 refused by 10.0.0.4:5432",
    ];
    for r in reasons {
        h.emit(Topic::KernelRestartInitiated, "db", json!({ "reason": r }));
    }
    assert!(
        h.collect(5 * S).await.is_empty(),
        "twice is not yet repeated"
    );
    h.emit(
        Topic::KernelRestartInitiated,
        "db",
        json!({ "reason": "panic: connection 90 refused by 10.0.0.9:5432" }),
    );
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "repeated_error")
        })
        .await
        .expect("escalation");
    assert_eq!(
        (d.component.as_str(), d.playbook.as_deref()),
        ("db", Some("escalate_to_coding_agent"))
    );
    assert_eq!(d.details["count"], 3);
    assert_eq!(
        d.details["signature"],
        "db: panic: connection # refused by #.#.#.#:#"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_of_a_sandbox_kernel_quarantines_and_of_an_unmarked_process_kernel_does_not() {
    let mut h = Harness::new(Config::default()).await;
    h.register(
        &idle("sandboxed", 60 * S)
            .isolation(Isolation::Process)
            .sandbox(true),
    );
    // A user's own process (a web server): its crash is its supervisor's to repair.
    h.register(&idle("inproc", 60 * S).isolation(Isolation::Process));
    let mut t = only();
    t.sandbox_failure.enabled = true;
    t.sandbox_failure.interval = S;
    h.start_triggers(&t).await;
    h.emit(
        Topic::KernelRestartInitiated,
        "inproc",
        json!({"reason": "panic: x"}),
    );
    h.emit(
        Topic::KernelRestartInitiated,
        "sandboxed",
        json!({"reason": "requested by operator"}),
    );
    assert!(h.collect(5 * S).await.is_empty());
    h.emit(
        Topic::KernelRestartInitiated,
        "sandboxed",
        json!({"reason": "exited with status 139"}),
    );
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "sandbox_failure")
        })
        .await
        .expect("incident");
    assert_eq!(
        (
            d.component.as_str(),
            d.failure_mode.as_str(),
            d.playbook.as_deref()
        ),
        ("sandboxed", "sandbox_crash", Some("quarantine_artifacts"))
    );
    assert_eq!(d.details["reason"], "exited with status 139");
    assert_eq!(d.details["sandbox"], true);
}

#[tokio::test(start_paused = true)]
async fn a_trust_score_below_the_threshold_rolls_back() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.trust_score.enabled = true;
    t.trust_score.interval = S;
    h.start_triggers(&t).await;
    // Real ledger changes: 1.0 - 0.15 = 0.85, then 0.55.
    let trust = h.system.trust.clone();
    trust.penalize("api", "playbook failed").expect("penalize");
    let quiet = h.collect(3 * S).await;
    assert!(
        quiet.iter().all(|(e, _)| e.topic != Topic::EventIncident),
        "{quiet:?}"
    );
    trust.penalize("api", "playbook failed").expect("penalize");
    trust.penalize("api", "playbook failed").expect("penalize");
    let (_, d) = h
        .wait_for(5 * S, |e, d| is(e, d, Topic::EventIncident, "trust_score"))
        .await
        .expect("incident");
    assert_eq!(
        (d.component.as_str(), d.playbook.as_deref()),
        ("api", Some("rollback_deployment"))
    );
    assert!(d.details["score"].as_f64().is_some_and(|s| s < 0.7));
    assert_eq!(d.details["min_score"], 0.7);
}
