//! Expectations about harm and verdicts, judged on hand-made timelines: an incident's
//! status and closed reason, an incident that must not open, no incident left open at
//! the end, and serve never restarted.

use grace::chaos::measure::{
    expectation_status, Check, Facts, IncidentSpan, PidChange, ProbeChange, Timeline,
};
use grace::chaos::scenario::{Expectation, IncidentMatch};

fn span(id: &str, trigger: &str, opened: f64, status: &str, reason: Option<&str>) -> IncidentSpan {
    IncidentSpan {
        id: id.into(),
        component: "host".into(),
        trigger: trigger.into(),
        failure_mode: "disk_pressure".into(),
        playbook: Some("resource_cleanup".into()),
        status: status.into(),
        opened,
        resolved: None,
        success: None,
        mttr_seconds: None,
        closed_reason: reason.map(str::to_owned),
    }
}

fn matching(trigger: &str) -> IncidentMatch {
    IncidentMatch {
        trigger: Some(trigger.into()),
        ..IncidentMatch::default()
    }
}

fn status(e: &Expectation, tl: &Timeline, facts: &Facts, now: f64) -> Check {
    expectation_status(e, tl, facts, 0.0, now).0
}

#[test]
fn an_incident_must_have_the_status_and_one_of_the_closed_reasons_asked() {
    let want = Expectation::Incident(IncidentMatch {
        status: Some(vec!["failed".into()]),
        closed_reason: Some(vec![
            "verification_failed".into(),
            "remediation_failed".into(),
        ]),
        ..matching("resource_spike")
    });
    let mut tl = Timeline::default();
    let f = Facts::default();
    tl.incidents
        .push(span("i1", "resource_spike", 1.0, "verifying", None));
    assert_eq!(
        status(&want, &tl, &f, 2.0),
        Check::Pending,
        "still verifying"
    );
    tl.incidents[0] = span("i1", "resource_spike", 1.0, "resolved", Some("verified"));
    assert_eq!(
        status(&want, &tl, &f, 3.0),
        Check::Pending,
        "resolved is a lie here"
    );
    tl.incidents[0] = span("i1", "resource_spike", 1.0, "failed", Some("escalated"));
    assert_eq!(
        status(&want, &tl, &f, 3.0),
        Check::Pending,
        "reason not accepted"
    );
    tl.incidents[0] = span(
        "i1",
        "resource_spike",
        1.0,
        "failed",
        Some("verification_failed"),
    );
    let (c, detail) = expectation_status(&want, &tl, &f, 0.0, 4.0);
    assert_eq!(c, Check::Met);
    assert!(detail.contains("failed, verification_failed"), "{detail}");
    assert!(want
        .label()
        .contains("closed_reason=verification_failed|remediation_failed"));
}

#[test]
fn no_incident_holds_only_once_the_quiet_time_after_the_faults_passed() {
    let none = Expectation::NoIncident(matching("api_timeout"));
    let mut tl = Timeline::default();
    let running = Facts::default();
    assert_eq!(
        status(&none, &tl, &running, 30.0),
        Check::Pending,
        "a fault still holds"
    );
    let ended = Facts {
        faults_ended_at: Some(5.0),
        ..Facts::default()
    };
    let quiet = Expectation::QUIET.as_secs_f64();
    assert_eq!(
        status(&none, &tl, &ended, 5.0 + quiet - 0.1),
        Check::Pending
    );
    assert_eq!(status(&none, &tl, &ended, 5.0 + quiet), Check::Met);
    // Another trigger's incident does not count; a matching one does, for good.
    tl.incidents
        .push(span("i1", "resource_spike", 2.0, "open", None));
    assert_eq!(status(&none, &tl, &ended, 20.0), Check::Met);
    tl.incidents
        .push(span("i2", "api_timeout", 3.0, "open", None));
    let (c, detail) = expectation_status(&none, &tl, &running, 0.0, 3.5);
    assert_eq!(c, Check::Unmet);
    assert!(detail.contains("i2"), "{detail}");
    // One opened before the first injection is not the fault's.
    let before = Timeline {
        incidents: vec![span("i0", "api_timeout", -1.0, "open", None)],
        ..Timeline::default()
    };
    assert_eq!(status(&none, &before, &ended, 20.0), Check::Met);
}

#[test]
fn no_open_incidents_at_end_follows_the_probe_and_names_what_is_open() {
    let e = Expectation::NoOpenIncidentsAtEnd;
    let f = Facts::default();
    let mut tl = Timeline::default();
    assert_eq!(status(&e, &tl, &f, 1.0), Check::Pending, "never observed");
    tl.incidents
        .push(span("i1", "heartbeat_failure", 1.0, "mitigating", None));
    tl.probes.insert(
        "no_open_incidents".into(),
        vec![
            ProbeChange { t: -1.0, ok: true },
            ProbeChange { t: 1.0, ok: false },
        ],
    );
    let (c, detail) = expectation_status(&e, &tl, &f, 0.0, 2.0);
    assert_eq!(c, Check::Pending);
    assert!(
        detail.contains("i1 (heartbeat_failure, mitigating)"),
        "{detail}"
    );
    tl.probes
        .get_mut("no_open_incidents")
        .expect("probe")
        .push(ProbeChange { t: 6.0, ok: true });
    assert_eq!(status(&e, &tl, &f, 5.0), Check::Pending);
    assert_eq!(status(&e, &tl, &f, 6.5), Check::Met);
}

#[test]
fn serve_not_restarted_fails_on_a_new_pid_after_injection() {
    let e = Expectation::ServeNotRestarted;
    let f = Facts::default();
    let mut tl = Timeline {
        serve_pids: vec![
            PidChange {
                t: -2.0,
                pid: Some(10),
            },
            PidChange { t: -1.0, pid: None },
            PidChange {
                t: -0.5,
                pid: Some(11),
            },
        ],
        ..Timeline::default()
    };
    assert_eq!(
        status(&e, &tl, &f, 5.0),
        Check::Met,
        "restarts before injection"
    );
    tl.serve_pids.push(PidChange {
        t: 3.0,
        pid: Some(12),
    });
    let (c, detail) = expectation_status(&e, &tl, &f, 0.0, 5.0);
    assert_eq!(c, Check::Unmet);
    assert!(detail.contains("12"), "{detail}");
}
