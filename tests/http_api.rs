//! The kernel and incident API over real HTTP: listing, restart, authentication,
//! validation, size limits, JSON errors.

mod http_support;

use std::time::Duration;

use grace::config::Config;
use grace::incident::{IncidentDraft, IncidentStatus, Opened, Severity};
use http_support::*;

#[tokio::test]
async fn kernels_are_listed_with_state_and_supervisor() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let v = get(h.addr, "/api/kernels").await;
    assert_eq!(v.status, 200);
    let v = v.json();
    assert_eq!(v["total"], 3, "{v}");
    let alpha = kernel(h.addr, "alpha").await;
    assert_eq!(alpha["state"], "running");
    assert_eq!(alpha["critical"], true);
    assert_eq!(alpha["supervisor"], "kernels");
    assert_eq!(alpha["restarts"], 0);
    assert!(alpha["heartbeat_age_ms"].is_u64());
    assert_eq!(kernel(h.addr, "message_bus").await["supervisor"], "system");
    h.server.shutdown().await;
}

#[tokio::test]
async fn restart_needs_the_token_and_restarts_the_kernel() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let path = "/api/kernels/beta/restart";

    let a = send(h.addr, "POST", path, &[], "").await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"], "missing Authorization header");
    assert!(a.json()["hint"].as_str().expect("hint").contains("token"));

    let a = send(
        h.addr,
        "POST",
        path,
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"], "invalid bearer token");
    assert_eq!(kernel(h.addr, "beta").await["restarts"], 0);

    let a = post_auth(h.addr, &h.sys, path, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["restarted"], true);
    assert_eq!(v["status"]["restarts"], 1);
    assert_eq!(v["status"]["last_reason"], "operator");
    let beta = kernel(h.addr, "beta").await;
    assert_eq!(
        (beta["restarts"].as_u64(), beta["state"].as_str()),
        (Some(1), Some("running"))
    );

    // The restart reaches /metrics through the bus.
    let ok = eventually(Duration::from_secs(5), || async {
        get(h.addr, "/metrics").await.body.contains(
            "grace_restarts_total{kernel=\"beta\",reason=\"explicit\",outcome=\"success\"} 1",
        )
    })
    .await;
    assert!(ok, "restart by reason missing from /metrics");
    h.server.shutdown().await;
}

#[tokio::test]
async fn unknown_and_malformed_kernel_names_are_404_and_400() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let a = post_auth(h.addr, &h.sys, "/api/kernels/nosuch/restart", "").await;
    assert_eq!(a.status, 404);
    assert!(a.json()["error"]
        .as_str()
        .expect("error")
        .contains("nosuch"));
    let a = post_auth(h.addr, &h.sys, "/api/kernels/bad%20name!/restart", "").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.json()["hint"].is_string());
    let long = format!("/api/kernels/{}/restart", "x".repeat(65));
    assert_eq!(post_auth(h.addr, &h.sys, &long, "").await.status, 400);
    h.server.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_and_errors_are_json() {
    let http = grace::http::HttpConfig {
        body_limit: 1024,
        ..http_config()
    };
    let h = harness(Config::default(), http, two_kernels()).await;
    let big = "x".repeat(4096);
    let a = post_auth(h.addr, &h.sys, "/api/kernels/beta/restart", &big).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.content_type.starts_with("application/json"));
    assert!(a.json()["hint"]
        .as_str()
        .expect("hint")
        .contains("body_limit"));
    assert_eq!(kernel(h.addr, "beta").await["restarts"], 0);

    let a = get(h.addr, "/no/such/path").await;
    assert_eq!(a.status, 404);
    assert!(a.json()["error"]
        .as_str()
        .expect("error")
        .contains("/no/such/path"));

    let a = get(h.addr, "/api/kernels/beta/restart").await;
    assert_eq!(a.status, 405);
    assert!(a.json()["error"].is_string());
    h.server.shutdown().await;
}

fn draft(trigger: &str, component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.to_owned(),
        component: component.to_owned(),
        failure_mode: trigger.to_owned(),
        severity: Severity::High,
        playbook: Some("restart_kernel".to_owned()),
        summary: format!("{trigger} on {component}"),
        details: serde_json::Value::Null,
        detected_at: None,
    }
}

#[tokio::test]
async fn incidents_come_from_the_store_newest_first_with_a_summary() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let store = &h.sys.incidents;
    let Opened::New(first) = store
        .open(draft("heartbeat_failure", "beta"))
        .expect("open")
    else {
        panic!("first incident is new");
    };
    let Opened::New(second) = store.open(draft("api_timeout", "http")).expect("open") else {
        panic!("second incident is new");
    };
    store.open(draft("api_timeout", "http")).expect("repeat");
    store
        .resolve(
            &first.incident_id,
            IncidentStatus::Resolved,
            true,
            Vec::new(),
        )
        .expect("resolve");

    let v = get(h.addr, "/api/incidents").await.json();
    assert_eq!(v["summary"]["total"], 2, "{v}");
    assert_eq!(v["summary"]["by_status"]["open"], 1);
    assert_eq!(v["summary"]["mttr_count"], 1);
    assert_eq!(
        v["incidents"][0]["incident_id"],
        second.incident_id.as_str(),
        "newest first"
    );
    assert_eq!(v["incidents"][0]["occurrences"], 2);
    assert_eq!(v["incidents"][1]["status"], "resolved");
    let v = get(h.addr, "/api/incidents?open=true").await.json();
    let open = v["incidents"].as_array().expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["trigger"], "api_timeout");
    let v = get(h.addr, "/api/incidents?limit=1").await.json();
    assert_eq!(v["incidents"].as_array().expect("list").len(), 1);
    assert_eq!(get(h.addr, "/api/incidents?limit=0").await.status, 400);
    let a = get(h.addr, "/api/incidents?bogus=1").await;
    assert_eq!(a.status, 400);
    assert!(a.json()["error"].is_string());

    let m = get(h.addr, "/metrics").await.body;
    assert!(
        m.contains("grace_incidents_recent{trigger=\"api_timeout\",status=\"open\"} 1"),
        "{m}"
    );
    assert!(m.contains("grace_incidents_total 2\n"), "{m}");
    assert!(m.contains("grace_incidents_recorded{status=\"resolved\"} 1"));
    assert!(m.contains("grace_incidents_open 1"));

    let d = get(h.addr, "/operator/dashboard").await.json();
    assert_eq!(d["incidents"]["open"][0]["trigger"], "api_timeout");
    assert_eq!(d["incidents"]["summary"]["total"], 2);
    assert_eq!(d["triggers"]["issue_counts"]["api_timeout"], 2);
    h.server.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_json_has_the_seed_shape() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    std::fs::write(
        h.sys.paths.state_json(),
        r#"{"manual_shutdown": false, "timestamp": "2025-01-01T00:00:00Z", "restart_count": 3}"#,
    )
    .expect("state.json");
    h.sys.trust.penalize("beta", "test").expect("penalize");
    // The state files are read by the readings task, every [http] sample_interval.
    let read = eventually(Duration::from_secs(5), || async {
        let v = get(h.addr, "/operator/dashboard").await.json();
        v["watchdogs"]["kill_switch"]["state"]["restart_count"] == 3
    })
    .await;
    assert!(read, "state.json never read");
    let a = get(h.addr, "/operator/dashboard").await;
    assert_eq!(a.status, 200);
    let v = a.json();
    for key in [
        "timestamp",
        "system_state",
        "boot_phase",
        "kernels",
        "triggers",
        "snapshots",
        "watchdogs",
        "trust",
        "incidents",
        "health",
    ] {
        assert!(!v[key].is_null(), "missing {key}: {v}");
    }
    assert_eq!(v["system_state"], "healthy");
    assert_eq!(v["kernels"]["total"], 3);
    assert_eq!(v["kernels"]["running"], 3);
    for key in [
        "total_checks",
        "issues_detected",
        "actions_executed",
        "last_run",
        "running",
        "check_interval",
        "issue_counts",
        "triggers_monitored",
    ] {
        assert!(v["triggers"].get(key).is_some(), "triggers.{key} missing");
    }
    assert_eq!(v["watchdogs"]["kill_switch"]["state"]["restart_count"], 3);
    assert_eq!(v["health"]["status"], "healthy");
    let beta = v["trust"]["beta"].as_f64().expect("beta's trust score");
    assert!(beta < 1.0, "{beta}");
    let m = get(h.addr, "/metrics").await.body;
    assert!(
        m.contains(&format!("grace_trust_score{{component=\"beta\"}} {beta}")),
        "{m}"
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn slow_requests_time_out_with_504_and_are_counted() {
    let mut config = Config::default();
    config.chaos.enabled = true;
    let http = grace::http::HttpConfig {
        request_timeout: Duration::from_millis(300),
        ..http_config()
    };
    let h = harness(config, http, two_kernels()).await;
    let a = post_auth(
        h.addr,
        &h.sys,
        "/api/chaos/latency",
        r#"{"ms": 2000, "duration_s": 30}"#,
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let a = get(h.addr, "/api/kernels").await;
    assert_eq!(a.status, 504);
    assert!(a.json()["error"]
        .as_str()
        .expect("error")
        .contains("timed out"));
    assert_eq!(h.server.stats().timeouts(), 1);
    assert_eq!(
        h.sys.api.total_timeouts(),
        1,
        "the api_timeout trigger sees it"
    );
    assert!(h.sys.api.total_requests() >= 2);
    assert_eq!(
        get(h.addr, "/health").await.status,
        200,
        "health is not delayed"
    );
    let m = get(h.addr, "/metrics").await.body;
    assert!(m.contains("grace_http_timeouts_total 1"), "{m}");
    let a = post_auth(
        h.addr,
        &h.sys,
        "/api/chaos/latency",
        r#"{"ms": 0, "duration_s": 0}"#,
    )
    .await;
    assert_eq!(a.status, 202);
    assert_eq!(get(h.addr, "/api/kernels").await.status, 200);
    h.server.shutdown().await;
}
