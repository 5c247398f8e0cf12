//! Unit tests of `grace status`: the verdict, the exit codes, the text.

use super::*;
use serde_json::json;

fn process(alive: bool) -> Option<ProcessStatus> {
    Some(ProcessStatus {
        pid: 42,
        alive,
        uptime_s: None,
        cpu_percent: None,
        memory_bytes: None,
    })
}

fn health(state: &str, reasons: &[&str]) -> Option<ServeHealth> {
    Some(ServeHealth {
        http_status: Some(200),
        addr: Some("127.0.0.1:1".to_owned()),
        state: state.to_owned(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
        open_count: Some(2),
        kernels: None,
        open_incidents: Some(vec![json!({"incident_id": "inc_1"})]),
    })
}

fn report(
    watchdog: Option<ProcessStatus>,
    serve: Option<ProcessStatus>,
    health: Option<ServeHealth>,
) -> StatusReport {
    StatusReport {
        state_dir: PathBuf::from("/tmp/x"),
        kill_switch: KillSwitch::default(),
        watchdog,
        serve,
        port: None,
        health,
        containment: None,
    }
}

#[test]
fn the_verdict_is_the_body_of_health_not_its_status_code() {
    let body = json!({"status": "degraded", "reasons": ["kernel web stopped"],
                      "incidents": {"total": 3}});
    let (state, reasons, open) = verdict(Some(200), Some(&body));
    assert_eq!(state, "degraded");
    assert_eq!(reasons, vec!["kernel web stopped".to_owned()]);
    assert_eq!(open, Some(3));
    let ok = json!({"status": "healthy", "reasons": []});
    assert_eq!(verdict(Some(200), Some(&ok)).0, "healthy");
    let (state, reasons, _) = verdict(Some(500), None);
    assert_eq!(state, "degraded");
    assert!(reasons[0].contains("500"), "{reasons:?}");
    assert_eq!(verdict(None, None).0, "unreachable");
}

#[test]
fn exit_codes_follow_lsb_status() {
    let healthy = report(process(true), process(true), health("healthy", &[]));
    assert_eq!(healthy.exit_code(), 0);
    let degraded = report(
        None,
        process(true),
        health("degraded", &["kernel web stopped"]),
    );
    assert_eq!(degraded.exit_code(), 1);
    assert_eq!(
        report(None, process(true), health("unreachable", &[])).exit_code(),
        1
    );
    assert_eq!(
        report(None, process(false), None).exit_code(),
        1,
        "dead, pid left"
    );
    assert_eq!(report(None, None, None).exit_code(), 3);
    assert_eq!(report(process(false), None, None).exit_code(), 3);
    assert_eq!(
        report(process(true), None, None).exit_code(),
        1,
        "the watchdog is bringing serve back"
    );
    let mut stopped = report(process(true), None, None);
    stopped.kill_switch.manual_shutdown = true;
    assert_eq!(stopped.exit_code(), 3);
}

#[test]
fn render_says_degraded_with_the_reasons_and_counts_open_incidents() {
    let r = report(
        None,
        process(true),
        health(
            "degraded",
            &["kernel web stopped", "incident inc_1 verifying: x on web"],
        ),
    );
    let text = render(&r);
    assert!(
        text.contains(
            "health:       degraded (127.0.0.1:1): kernel web stopped; incident inc_1 verifying: x on web\n"
        ),
        "{text}"
    );
    assert!(text.contains("incidents:    2 open\n"), "{text}");
    let text = render(&report(None, process(true), health("healthy", &[])));
    assert!(
        text.contains("health:       healthy (127.0.0.1:1)\n"),
        "{text}"
    );
}
