//! `GET /health` (liveness, verdict in the body) and `GET /ready` (readiness) over real
//! HTTP with a real tree: a kernel stopped through its supervisor or an open incident
//! makes serve `degraded` and names the cause; binding: free port, taken port, shutdown.

mod http_support;

use std::time::Duration;

use grace::config::Config;
use grace::http::{self, HttpError};
use grace::incident::{IncidentDraft, IncidentStatus, Opened, Severity};
use http_support::*;

/// `/health` and `/ready` together: (health status, ready status, health body).
async fn verdict(addr: std::net::SocketAddr) -> (u16, u16, serde_json::Value) {
    let h = get(addr, "/health").await;
    let r = get(addr, "/ready").await;
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    let (hv, rv) = (h.json(), r.json());
    assert_eq!(
        hv["status"], rv["status"],
        "/health {hv} and /ready {rv} disagree"
    );
    (h.status, r.status, hv)
}

fn reasons(v: &serde_json::Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .expect("reasons list")
        .iter()
        .map(|r| r.as_str().expect("reason text").to_owned())
        .collect()
}

#[tokio::test]
async fn a_kernel_stopped_by_its_supervisor_makes_serve_degraded_until_it_runs_again() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 200), "{v}");
    assert_eq!(v["status"], "healthy");
    assert!(reasons(&v).is_empty(), "{v}");

    // beta is not critical: a user's kernel left down is still a service down.
    h.sys
        .registry
        .stop("beta", Duration::from_secs(2))
        .await
        .expect("stop beta");
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!(health, 200, "liveness stays 200 while serve answers: {v}");
    assert_eq!(ready, 503, "{v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["down"], serde_json::json!(["beta"]));
    let r = reasons(&v);
    assert!(
        r.len() == 1 && r[0].starts_with("kernel beta stopped"),
        "{r:?}"
    );
    assert_eq!(v["kernels"]["failed"], 1);

    let a = post_auth(h.addr, &h.sys, "/api/kernels/beta/restart", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 200), "{v}");
    assert_eq!(v["status"], "healthy");
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_critical_kernel_down_is_named_as_critical() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    h.sys
        .registry
        .stop("alpha", Duration::from_secs(2))
        .await
        .expect("stop alpha");
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 503), "{v}");
    assert_eq!(v["critical_down"], serde_json::json!(["alpha"]));
    let r = reasons(&v);
    assert!(
        r.len() == 1 && r[0].starts_with("critical kernel alpha stopped"),
        "{r:?}"
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_kernel_left_down_after_its_attempt_limit_is_named() {
    use grace::kernel::Fault;
    use grace::supervisor::{AttemptLimit, ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
    let (sys, _dir) = system(Config::default());
    let limit = AttemptLimit {
        max_attempts: 1,
        cooldown: Duration::from_secs(30),
    };
    let spec = SupervisorSpec::new("kernels", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(1))
        .child(ChildSpec::kernel(tree::counter("web", false)).attempts(limit));
    let _sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .expect("start supervisor");
    let server = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start");
    let addr = server.local_addr();
    assert_eq!(verdict(addr).await.1, 200);
    // The first crash is repaired (its one attempt); the second leaves it down.
    for n in 0..2u64 {
        sys.registry.inject("web", Fault::Panic).expect("inject");
        let seen = eventually(Duration::from_secs(5), || async {
            let k = kernel(addr, "web").await;
            (n == 0 && k["restarts"] == 1 && k["state"] == "running") || k["state"] == "failed"
        })
        .await;
        assert!(seen, "crash {n} not handled: {}", kernel(addr, "web").await);
    }
    let left_down = eventually(Duration::from_secs(5), || async {
        verdict(addr).await.2["down"] == serde_json::json!(["web"])
    })
    .await;
    let (health, ready, v) = verdict(addr).await;
    assert!(left_down, "{v}");
    assert_eq!((health, ready), (200, 503), "{v}");
    let r = reasons(&v);
    assert!(
        r.len() == 1 && r[0].starts_with("kernel web failed, left down by its supervisor"),
        "{r:?}"
    );
    server.shutdown().await;
}

fn draft(trigger: &str, component: &str) -> IncidentDraft {
    IncidentDraft {
        trigger: trigger.to_owned(),
        component: component.to_owned(),
        failure_mode: trigger.to_owned(),
        severity: Severity::High,
        playbook: None,
        summary: format!("{trigger} on {component}"),
        details: serde_json::Value::Null,
        detected_at: None,
    }
}

#[tokio::test]
async fn an_incident_makes_serve_degraded_while_it_is_worked_on() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    let store = &h.sys.incidents;
    let Opened::New(inc) = store.open(draft("sandbox_failure", "beta")).expect("open") else {
        panic!("a new incident");
    };
    let id = inc.incident_id.clone();
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 503), "{v}");
    assert_eq!(
        reasons(&v),
        vec![format!("incident {id} open: sandbox_failure on beta")]
    );
    assert_eq!(v["incidents"]["total"], 1);
    assert_eq!(v["open_incidents"][0]["incident_id"], id.as_str());

    for status in [IncidentStatus::Mitigating, IncidentStatus::Verifying] {
        store.set_status(&id, status).expect("status");
        let (_, ready, v) = verdict(h.addr).await;
        assert_eq!(ready, 503, "{status:?} is still open: {v}");
        assert_eq!(v["incidents"]["total"], 1);
        assert!(reasons(&v)[0].contains(status.as_str()), "{v}");
    }

    store
        .resolve(&id, IncidentStatus::Resolved, true, Vec::new())
        .expect("resolve");
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 200), "{v}");
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["incidents"]["total"], 0);
    h.server.shutdown().await;
}

#[tokio::test]
async fn emergency_mode_makes_serve_degraded() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    h.sys.set_emergency(true);
    let (health, ready, v) = verdict(h.addr).await;
    assert_eq!((health, ready), (200, 503), "{v}");
    assert_eq!(reasons(&v), vec!["emergency mode on".to_owned()]);
    h.sys.set_emergency(false);
    assert_eq!(verdict(h.addr).await.1, 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn health_answers_200_with_a_json_body_on_a_free_port() {
    let (sys, _dir) = system(Config::default());
    let server = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let a = get(addr, "/health").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.content_type.starts_with("application/json"));
    let v = a.json();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["kernels"]["total"], 0);
    assert!(v["failed"].as_array().expect("failed list").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_is_port_in_use_and_shutdown_frees_the_port() {
    let (sys, _dir) = system(Config::default());
    let first = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start");
    let port = first.local_addr().port();
    let err = http::start(sys.clone(), &http_config(), Some(port), None)
        .await
        .expect_err("second bind must fail");
    assert!(
        matches!(err, HttpError::PortInUse { port: p, .. } if p == port),
        "{err:?}"
    );
    assert!(err.to_string().contains("already in use"));
    first.shutdown().await;
    let again = http::start(sys.clone(), &http_config(), Some(port), None)
        .await
        .expect("port free after shutdown");
    assert_eq!(get(again.local_addr(), "/health").await.status, 200);
    again.shutdown().await;
}

#[tokio::test]
async fn the_token_file_is_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (sys, _dir) = system(Config::default());
    let server = http::start(sys.clone(), &http_config(), None, None)
        .await
        .expect("start");
    let meta = std::fs::metadata(sys.paths.token()).expect("token exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    server.shutdown().await;
}
