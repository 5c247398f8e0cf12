//! heartbeat_failure and critical_heartbeat on real kernel statuses in the registry,
//! and flap detection of a condition that toggles at every check.

mod trigger_support;

use std::sync::Arc;
use std::time::Duration;

use grace::bus::Topic;
use grace::config::Config;
use grace::incident::Severity;
use grace::kernel::{KernelState, KernelStatus, Request};
use serde_json::Value;
use trigger_support::{idle, is, keep_beating, only, Harness};

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_stale_heartbeat_is_one_incident_and_a_fresh_one_is_none() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.heartbeat_failure.enabled = true;
    t.heartbeat_failure.interval = S;
    let stale = h.register(&idle("stale", 10 * S));
    let fresh = h.register(&idle("fresh", 10 * S));
    let _beat = keep_beating(fresh, S);
    h.start_triggers(&t).await;

    let (e, d) = h
        .wait_for(30 * S, |e, d| {
            is(e, d, Topic::EventIncident, "heartbeat_failure")
        })
        .await
        .expect("an incident for the stale kernel");
    assert_eq!(e.component.as_deref(), Some("stale"));
    assert_eq!(
        (
            d.component.as_str(),
            d.failure_mode.as_str(),
            d.playbook.as_deref()
        ),
        ("stale", "heartbeat_failure", Some("restart_kernel"))
    );
    assert_eq!(d.severity, Severity::High);
    assert!(d.details["heartbeat_age_ms"]
        .as_u64()
        .is_some_and(|a| a > 10_000));
    assert!(d.detected_at.is_some());
    assert!(stale.heartbeat_age_ms() > 10_000);

    // While it stays hung nothing is published again before repeat_interval (5 min),
    // and the fresh kernel is never reported.
    let more = h.collect(120 * S).await;
    assert!(more.is_empty(), "{more:?}");
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_missed_event_is_an_incident() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    t.heartbeat_failure.enabled = true;
    t.heartbeat_failure.interval = S;
    h.start_triggers(&t).await;
    h.emit(
        Topic::KernelHeartbeatMissed,
        "worker",
        serde_json::json!({"kernel": "worker", "heartbeat_age_ms": 61_000, "timeout_ms": 60_000}),
    );
    let (_, d) = h
        .wait_for(10 * S, |e, d| {
            is(e, d, Topic::EventIncident, "heartbeat_failure")
        })
        .await
        .expect("incident from the event");
    assert_eq!(d.component, "worker");
    assert_eq!(d.details["source"], "kernel.heartbeat.missed");
}

fn critical_only() -> grace::trigger::TriggersConfig {
    let mut t = only();
    t.critical_heartbeat.enabled = true;
    t.critical_heartbeat.interval = S;
    t
}

/// Two critical kernels, alpha and beta, beating, and critical_heartbeat running.
async fn two_critical_kernels() -> (
    Harness,
    Arc<KernelStatus>,
    Arc<KernelStatus>,
    [tokio::task::JoinHandle<()>; 2],
) {
    let mut h = Harness::new(Config::default()).await;
    let a = h.register(&idle("alpha", 5 * S).critical());
    let b = h.register(&idle("beta", 5 * S).critical());
    let beats = [
        keep_beating(a.clone(), S / 2),
        keep_beating(b.clone(), S / 2),
    ];
    h.start_triggers(&critical_only()).await;
    (h, a, b, beats)
}

#[tokio::test(start_paused = true)]
async fn one_critical_kernel_down_is_an_incident_two_are_one_emergency() {
    let (h, a, b, _beats) = two_critical_kernels().await;
    assert!(
        h.collect(10 * S).await.is_empty(),
        "healthy kernels are quiet"
    );

    a.set_state(KernelState::Failed);
    let (_, d) = h
        .wait_for(10 * S, |e, d| {
            is(e, d, Topic::EventIncident, "critical_heartbeat")
        })
        .await
        .expect("incident");
    assert_eq!(
        (d.component.as_str(), d.playbook.as_deref(), d.severity),
        ("alpha", Some("critical_kernel_restart"), Severity::Critical)
    );

    b.set_state(KernelState::Restarting);
    let got = h.collect(5 * S).await;
    let emergencies: Vec<_> = got
        .iter()
        .filter(|(e, _)| e.topic == Topic::EventEmergency)
        .collect();
    assert_eq!(emergencies.len(), 1, "{got:?}");
    let d = &emergencies[0].1;
    assert_eq!(d.component, "system");
    assert_eq!(
        d.playbook.as_deref(),
        Some("emergency_critical_kernel_recovery")
    );
    assert_eq!(d.details["count"], 2);
    let names: Vec<&str> = d.details["down"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|k| k["kernel"].as_str())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(
        got.iter().all(|(e, _)| e.topic != Topic::EventIncident),
        "two down make one emergency, not incidents: {got:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn critical_kernels_restarted_one_after_another_are_one_emergency() {
    let (h, a, b, _beats) = two_critical_kernels().await;
    assert!(
        h.collect(3 * S).await.is_empty(),
        "healthy kernels are quiet"
    );

    // Killed together, brought back by their supervisor one after the other, with a
    // check in between: still one failure.
    a.record_restart("killed");
    let checked = h
        .system
        .registry
        .call(
            "trigger.critical_heartbeat",
            Request::new("check", Value::Null),
            Duration::from_secs(5),
        )
        .await;
    assert!(checked.is_ok(), "{checked:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.record_restart("killed");

    let got = h.collect(5 * S).await;
    assert!(
        got.iter().all(|(e, _)| e.topic != Topic::EventIncident),
        "no incident for the first of the two alone: {got:?}"
    );
    let emergencies: Vec<_> = got
        .iter()
        .filter(|(e, _)| e.topic == Topic::EventEmergency)
        .collect();
    assert_eq!(emergencies.len(), 1, "{got:?}");
    assert_eq!(emergencies[0].1.details["count"], 2);
}

#[tokio::test(start_paused = true)]
async fn late_beats_warn_before_the_kernel_is_declared_down() {
    let mut h = Harness::new(Config::default()).await;
    let c = h.register(&idle("gamma", 6 * S).critical().heartbeat(S, 6 * S));
    h.start_triggers(&critical_only()).await;
    c.beat();
    let (_, w) = h
        .wait_for(10 * S, |e, d| {
            is(e, d, Topic::EventEarlyWarning, "critical_heartbeat")
        })
        .await
        .expect("early warning");
    assert_eq!(
        (
            w.component.as_str(),
            w.failure_mode.as_str(),
            w.playbook.as_deref()
        ),
        (
            "gamma",
            "late_heartbeat",
            Some("proactive_kernel_health_check")
        )
    );
    let age = w.details["heartbeat_age_ms"].as_u64().expect("age");
    assert!(
        (3_000..=6_000).contains(&age),
        "late means past half the timeout: {age}"
    );
    let (_, d) = h
        .wait_for(10 * S, |e, d| {
            is(e, d, Topic::EventIncident, "critical_heartbeat")
        })
        .await
        .expect("then down");
    assert_eq!(d.failure_mode, "critical_kernel_down");
}

#[tokio::test(start_paused = true)]
async fn a_flapping_kernel_is_reported_once_and_not_remediated_in_a_loop() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = critical_only();
    // Without flap detection, every check that finds it down would publish.
    t.critical_heartbeat.repeat_interval = Some(Duration::ZERO);
    let k = h.register(&idle("delta", 60 * S).critical().heartbeat(S, 60 * S));
    let _b = keep_beating(k.clone(), S / 4);
    h.start_triggers(&t).await;
    // Toggle between down and up half-way between two checks, so that every check sees
    // the opposite of the previous one.
    tokio::time::sleep(S / 2).await;
    let toggler = {
        let k = k.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(S);
            let mut down = false;
            loop {
                tick.tick().await;
                down = !down;
                k.set_state(if down {
                    KernelState::Failed
                } else {
                    KernelState::Running
                });
            }
        })
    };
    let got = h.collect(60 * S).await;
    toggler.abort();
    let flapping: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, (e, d))| e.topic == Topic::EventEarlyWarning && d.failure_mode == "flapping")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(flapping.len(), 1, "one flapping warning: {got:?}");
    let (_, warn) = &got[flapping[0]];
    assert_eq!(warn.component, "delta");
    assert_eq!(warn.playbook, None, "a flapping warning remediates nothing");
    assert_eq!(
        warn.details["flapping_of"]["failure_mode"],
        "critical_kernel_down"
    );
    assert!(warn.details["percent_state_change"]
        .as_f64()
        .is_some_and(|p| p >= 50.0));
    let before = got[..flapping[0]]
        .iter()
        .filter(|(e, _)| e.topic == Topic::EventIncident)
        .count();
    let after = got[flapping[0]..]
        .iter()
        .filter(|(e, _)| e.topic == Topic::EventIncident)
        .count();
    assert!(before <= 6, "{before} incidents before flapping was seen");
    assert_eq!(after, 0, "no incident while it flaps");

    // Down for good: once the history calms down the incident fires again.
    k.set_state(KernelState::Failed);
    let (_, d) = h
        .wait_for(60 * S, |e, d| {
            is(e, d, Topic::EventIncident, "critical_heartbeat")
        })
        .await
        .expect("remediated once it stops flapping");
    assert_eq!(d.component, "delta");
}
