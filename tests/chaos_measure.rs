//! The pure part of the chaos harness: detection, recovery, expectations, verdict and
//! score from hand-made timelines; and the report (JSON, table, SVG) made from them.

use std::time::Duration;

use grace::chaos::measure::{
    assess, detection, expectation_status, recovered_at, recovery_start, score, AlertSeen, Check,
    Facts, FaultClass, FaultRecord, IncidentSpan, KernelEvent, PidChange, ProbeChange,
    SteadyChange, Timeline,
};
use grace::chaos::report::{summary_table, timeline_svg, RunReport, ScenarioReport};
use grace::chaos::scenario::{Expectation, IncidentMatch, Slo};

fn slo(secs: u64) -> Slo {
    Slo {
        max_recovery: Duration::from_secs(secs),
        max_detection: None,
        settle: None,
    }
}

fn steady(t: f64, ok: bool) -> SteadyChange {
    SteadyChange {
        t,
        ok,
        failing: if ok {
            vec![]
        } else {
            vec!["all_kernels_running: k restarting".into()]
        },
    }
}

fn kev(t: f64, restarts: u64, state: &str) -> KernelEvent {
    KernelEvent {
        t,
        kernel: "k".into(),
        restarts,
        state: state.into(),
    }
}

fn incident(id: &str, component: &str, opened: f64, resolved: Option<f64>) -> IncidentSpan {
    IncidentSpan {
        id: id.into(),
        component: component.into(),
        trigger: "heartbeat_failure".into(),
        failure_mode: "heartbeat_failure".into(),
        playbook: Some("restart_kernel".into()),
        status: if resolved.is_some() {
            "resolved"
        } else {
            "open"
        }
        .into(),
        opened,
        resolved,
        success: resolved.map(|_| true),
        mttr_seconds: resolved.map(|r| r - opened),
        closed_reason: resolved.map(|_| "verified".into()),
    }
}

fn kill_k(at: f64) -> FaultRecord {
    FaultRecord {
        label: "kill_kernel(k)".into(),
        class: FaultClass::Kernel("k".into()),
        injected_at: at,
        ended_at: at,
        error: None,
        notes: vec![],
        heals_during: false,
    }
}

/// A kernel killed at 0, seen restarting at 0.05, running again at 0.30.
fn kill_timeline() -> Timeline {
    Timeline {
        samples: vec![-0.05, 0.05, 0.15, 0.30, 0.40],
        steady: vec![steady(-0.05, true), steady(0.05, false), steady(0.30, true)],
        kernels: vec![
            kev(-0.05, 0, "running"),
            kev(0.05, 1, "restarting"),
            kev(0.30, 1, "running"),
        ],
        end: 0.40,
        ..Timeline::default()
    }
}

#[test]
fn a_restart_seen_in_the_kernel_list_is_detection() {
    let tl = kill_timeline();
    let (t, by) = detection(&tl, &kill_k(0.0)).expect("detected");
    assert_eq!(t, 0.05);
    assert!(by.contains("restart"), "{by}");
}

#[test]
fn a_stopped_kernel_is_the_fault_not_its_detection() {
    let tl = Timeline {
        samples: vec![-0.05, 0.05, 0.15],
        steady: vec![steady(-0.05, true), steady(0.05, false)],
        kernels: vec![kev(-0.05, 0, "running"), kev(0.05, 0, "stopped")],
        end: 0.15,
        ..Timeline::default()
    };
    assert!(detection(&tl, &kill_k(0.0)).is_none());
}

#[test]
fn an_earlier_incident_for_the_component_wins() {
    let mut tl = kill_timeline();
    tl.incidents.push(incident("inc_1", "k", 0.02, Some(0.2)));
    tl.incidents.push(incident("inc_0", "other", 0.01, None));
    let (t, by) = detection(&tl, &kill_k(0.0)).expect("detected");
    assert_eq!(t, 0.02);
    assert!(by.contains("inc_1"), "{by}");
    // Incidents and restarts from before the injection do not count.
    assert!(detection(&tl, &kill_k(1.0)).is_none());
}

#[test]
fn a_new_serve_pid_detects_a_serve_crash() {
    let tl = Timeline {
        serve_pids: vec![
            PidChange {
                t: -0.1,
                pid: Some(10),
            },
            PidChange { t: 0.2, pid: None },
            PidChange {
                t: 0.9,
                pid: Some(11),
            },
        ],
        ..Timeline::default()
    };
    let f = FaultRecord {
        class: FaultClass::Serve,
        ..kill_k(0.0)
    };
    assert_eq!(detection(&tl, &f).map(|d| d.0), Some(0.9));
    let op = FaultRecord {
        class: FaultClass::Operator,
        ..kill_k(0.0)
    };
    assert!(
        detection(&tl, &op).is_none(),
        "operator actions are not detected"
    );
}

#[test]
fn score_is_100_when_instant_50_at_the_slo_and_falls_past_it() {
    assert_eq!(score(Some(0.0), 10.0, true), 100);
    assert_eq!(score(Some(5.0), 10.0, true), 75);
    assert_eq!(score(Some(10.0), 10.0, true), 50);
    assert_eq!(score(Some(20.0), 10.0, true), 25);
    assert_eq!(score(None, 10.0, true), 0);
    assert_eq!(score(Some(0.0), 10.0, false), 80);
    assert_eq!(score(Some(1000.0), 10.0, false), 0);
}

#[test]
fn recovery_counts_from_injection_to_the_steady_state_after_detection() {
    let tl = kill_timeline();
    let a = assess(&slo(120), &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    let f = &a.faults[0];
    assert_eq!(f.mttd, Some(0.05));
    assert_eq!(f.recovery, Some(0.30));
    assert!(f.slo_met && a.slo_met && a.passed && a.steady_restored);
    assert_eq!(a.recovery, Some(0.30));
    assert_eq!(a.score, 100);
    assert!(a.reasons.is_empty(), "{:?}", a.reasons);
}

#[test]
fn a_fault_routed_around_recovers_before_it_ends() {
    // A port held for 20 s: serve moved to another port at once.
    let held = FaultRecord {
        class: FaultClass::Serve,
        ended_at: 20.0,
        ..kill_k(0.0)
    };
    assert_eq!(recovery_start(&held, Some(0.5)), 20.0);
    let routed = FaultRecord {
        heals_during: true,
        ..held
    };
    assert_eq!(recovery_start(&routed, Some(0.5)), 0.5);
    assert_eq!(recovery_start(&routed, None), 0.0);
}

#[test]
fn a_steady_state_that_breaks_again_at_once_is_not_yet_a_recovery() {
    let mut tl = kill_timeline();
    // Back at 0.30, broken again at 0.50, back for good at 0.80.
    tl.steady.push(steady(0.50, false));
    tl.steady.push(steady(0.80, true));
    tl.samples = vec![-0.05, 0.05, 0.15, 0.30, 0.40, 0.50, 0.80, 2.0];
    tl.end = 2.0;
    let a = assess(&slo(120), &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    assert_eq!(a.faults[0].recovery, Some(0.80), "1 s settle by default");
    let quick = Slo {
        settle: Some(Duration::from_millis(100)),
        ..slo(120)
    };
    let a = assess(&quick, &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    assert_eq!(a.faults[0].recovery, Some(0.30));
    assert_eq!(
        recovered_at(&tl, 0.85, 1.0),
        Some(2.0),
        "the next observation"
    );
}

#[test]
fn a_slow_recovery_misses_the_slo_and_says_so() {
    let tl = kill_timeline();
    let a = assess(&slo(0), &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    assert!(!a.passed && !a.slo_met);
    assert!(
        a.reasons.iter().any(|r| r.contains("over the SLO")),
        "{:?}",
        a.reasons
    );
}

#[test]
fn no_steady_state_at_the_end_scores_zero() {
    let mut tl = kill_timeline();
    tl.steady.truncate(2);
    let a = assess(&slo(120), &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    assert!(!a.passed && !a.steady_restored);
    assert_eq!(a.score, 0);
    assert_eq!(a.faults[0].recovery, None);
    assert!(
        a.reasons.iter().any(|r| r.contains("k restarting")),
        "{:?}",
        a.reasons
    );
}

#[test]
fn a_fault_that_could_not_be_injected_fails_the_scenario() {
    let tl = kill_timeline();
    let mut f = kill_k(0.0);
    f.error = Some("unsupported fault target: no file matches \"snapshots/*\"".into());
    let a = assess(&slo(120), &[], &[f], &tl, &Facts::default(), None);
    assert!(!a.passed);
    assert_eq!(a.faults[0].score, 0);
    assert!(
        a.reasons[0].contains("unsupported fault target"),
        "{:?}",
        a.reasons
    );
}

#[test]
fn aborted_scenarios_fail_with_the_reason() {
    let tl = kill_timeline();
    let a = assess(
        &slo(120),
        &[],
        &[kill_k(0.0)],
        &tl,
        &Facts::default(),
        Some("health_ok failed for 61s"),
    );
    assert!(!a.passed);
    assert_eq!(a.score, 0);
    assert!(a.reasons[0].starts_with("aborted"), "{:?}", a.reasons);
}

#[test]
fn max_detection_requires_detection_in_time() {
    let tl = kill_timeline();
    let strict = Slo {
        max_recovery: Duration::from_secs(120),
        max_detection: Some(Duration::from_millis(10)),
        settle: None,
    };
    let a = assess(&strict, &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    assert!(!a.faults[0].detection_met && !a.passed);
    assert_eq!(a.faults[0].score, 80);
}

#[test]
fn unmet_expectations_fail_and_cost_ten_points_each() {
    let mut tl = kill_timeline();
    tl.incidents.push(incident("inc_1", "k", 0.02, Some(0.2)));
    let expect = vec![
        Expectation::KernelRestarted("k".into()),
        Expectation::Incident(IncidentMatch {
            trigger: Some("heartbeat_failure".into()),
            playbook: Some("restart_kernel".into()),
            resolved: true,
            ..IncidentMatch::default()
        }),
        Expectation::Incident(IncidentMatch {
            trigger: Some("resource_spike".into()),
            ..IncidentMatch::default()
        }),
        Expectation::Alert("critical".into()),
    ];
    let a = assess(
        &slo(120),
        &expect,
        &[kill_k(0.0)],
        &tl,
        &Facts::default(),
        None,
    );
    let st: Vec<Check> = a.expectations.iter().map(|e| e.status).collect();
    assert_eq!(st, [Check::Met, Check::Met, Check::Unmet, Check::Unmet]);
    assert!(!a.passed);
    assert_eq!(a.score, 80);
}

#[test]
fn serve_down_windows_are_pending_then_met_or_broken() {
    let e = Expectation::ServeDown {
        from: Duration::from_secs(1),
        to: Duration::from_secs(3),
    };
    let mut tl = Timeline::default();
    tl.probes.insert(
        "health_ok".into(),
        vec![
            ProbeChange { t: -0.1, ok: true },
            ProbeChange { t: 0.4, ok: false },
        ],
    );
    let f = Facts::default();
    assert_eq!(expectation_status(&e, &tl, &f, 0.0, 2.0).0, Check::Pending);
    assert_eq!(expectation_status(&e, &tl, &f, 0.0, 3.5).0, Check::Met);
    tl.probes
        .get_mut("health_ok")
        .expect("probe")
        .push(ProbeChange { t: 2.5, ok: true });
    assert_eq!(expectation_status(&e, &tl, &f, 0.0, 2.6).0, Check::Unmet);
}

#[test]
fn kernel_state_alerts_and_restored_files() {
    let mut tl = kill_timeline();
    tl.kernels.push(kev(0.5, 4, "failed"));
    tl.alerts.push(AlertSeen {
        t: 0.6,
        severity: "critical".into(),
        file: "critical_20250101_000000_1.json".into(),
    });
    let facts = Facts {
        files_restored: Some(true),
        ..Facts::default()
    };
    for e in [
        Expectation::KernelState {
            kernel: "k".into(),
            state: "failed".into(),
        },
        Expectation::Alert("critical".into()),
        Expectation::FilesRestored,
    ] {
        assert_eq!(
            expectation_status(&e, &tl, &facts, 0.0, 1.0).0,
            Check::Met,
            "{e:?}"
        );
    }
    let not_yet = Facts {
        files_restored: Some(false),
        ..Facts::default()
    };
    assert_eq!(
        expectation_status(&Expectation::FilesRestored, &tl, &not_yet, 0.0, 1.0).0,
        Check::Pending
    );
}

fn report() -> ScenarioReport {
    let mut tl = kill_timeline();
    tl.incidents.push(incident("inc_<1>", "k", 0.02, Some(0.2)));
    tl.probes
        .insert("health_ok".into(), vec![ProbeChange { t: -0.05, ok: true }]);
    let a = assess(&slo(120), &[], &[kill_k(0.0)], &tl, &Facts::default(), None);
    ScenarioReport {
        name: "DIRT01".into(),
        description: "d".into(),
        seed: 1,
        target: "spawned".into(),
        started_at: "2025-01-01T00:00:00.000000Z".into(),
        max_recovery_s: 120.0,
        max_detection_s: None,
        error: None,
        aborted: None,
        assessment: a,
        timeline: tl,
        cleanup: vec![],
    }
}

#[test]
fn the_svg_has_lanes_marks_and_an_axis() {
    let svg = timeline_svg(&report());
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for lane in [
        "steady state",
        "serve /health",
        "kernel restarts",
        "fault kill_kernel(k)",
    ] {
        assert!(svg.contains(lane), "no lane {lane}");
    }
    assert!(svg.contains("incident heartbeat_failure → restart_kernel"));
    assert!(svg.contains("inc_&lt;1&gt;"), "labels are escaped");
    assert!(!svg.contains("inc_<1>"));
    assert!(svg.contains("detected 0.020s"), "detection mark");
    assert!(svg.contains("recovered 0.300s"), "recovery mark");
    assert!(
        svg.contains(">0.00s<") || svg.contains(">0.0s<"),
        "time axis"
    );
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(
        svg.matches("<title>").count(),
        svg.matches("</title>").count()
    );
}

#[test]
fn the_table_and_the_files() {
    let r = RunReport::new(vec![report()]);
    assert!(r.passed);
    let t = summary_table(&r);
    assert!(
        t.contains("DIRT01") && t.contains("kill_kernel(k)") && t.contains("PASS"),
        "{t}"
    );
    assert!(t.contains("0.020s") && t.contains("0.300s"), "{t}");
    assert!(t.contains("1/1 scenarios passed"), "{t}");
    let dir = tempfile::tempdir().expect("tmp");
    let files = r.write(dir.path()).expect("write");
    assert_eq!(files.len(), 3);
    let back: RunReport =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("read"))
            .expect("json");
    assert_eq!(back.scenarios[0].assessment.faults[0].mttd, Some(0.02));
    assert!(dir.path().join("DIRT01.svg").is_file());
    assert!(dir.path().join("summary.txt").is_file());
}
