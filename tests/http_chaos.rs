//! The chaos endpoints over real HTTP: absent unless enabled, token-protected,
//! validated, and acting on real kernels and the real bus.

mod http_support;

use std::time::Duration;

use grace::config::Config;
use http_support::*;

fn chaos_config() -> Config {
    let mut c = Config::default();
    c.chaos.enabled = true;
    c
}

#[tokio::test]
async fn chaos_endpoints_are_404_unless_enabled() {
    let h = harness(Config::default(), http_config(), two_kernels()).await;
    for path in [
        "/api/chaos/kernels/beta/panic",
        "/api/chaos/errors",
        "/api/chaos/latency",
    ] {
        let a = post_auth(h.addr, &h.sys, path, "{}").await;
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert!(a.json()["error"].is_string());
    }
    assert_eq!(kernel(h.addr, "beta").await["restarts"], 0);
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_panic_injected_over_http_restarts_the_kernel() {
    let h = harness(chaos_config(), http_config(), two_kernels()).await;
    let path = "/api/chaos/kernels/beta/panic";
    assert_eq!(send(h.addr, "POST", path, &[], "").await.status, 401);
    let a = post_auth(h.addr, &h.sys, path, "").await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.json()["fault"], "panic");
    let ok = eventually(Duration::from_secs(5), || async {
        let b = kernel(h.addr, "beta").await;
        b["restarts"] == 1 && b["state"] == "running"
    })
    .await;
    assert!(
        ok,
        "beta was not restarted: {}",
        kernel(h.addr, "beta").await
    );
    let reason = kernel(h.addr, "beta").await["last_reason"].clone();
    assert!(
        reason.as_str().expect("reason").contains("injected panic"),
        "{reason}"
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn kill_is_a_crash_the_supervisor_repairs() {
    let h = harness(chaos_config(), http_config(), two_kernels()).await;
    let a = post_auth(h.addr, &h.sys, "/api/chaos/kernels/alpha/kill", "").await;
    assert_eq!(a.status, 202, "{}", a.body);
    let ok = eventually(Duration::from_secs(5), || async {
        let k = kernel(h.addr, "alpha").await;
        k["restarts"] == 1 && k["state"] == "running"
    })
    .await;
    assert!(
        ok,
        "alpha was not restarted: {}",
        kernel(h.addr, "alpha").await
    );
    assert_eq!(get(h.addr, "/health").await.status, 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn stop_keeps_a_kernel_down_and_health_shows_it() {
    let h = harness(chaos_config(), http_config(), two_kernels()).await;
    let a = post_auth(h.addr, &h.sys, "/api/chaos/kernels/alpha/stop", "").await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(kernel(h.addr, "alpha").await["state"], "stopped");
    let a = get(h.addr, "/ready").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["critical_down"][0], "alpha");
    let a = post_auth(h.addr, &h.sys, "/api/chaos/kernels/alpha/kill", "").await;
    assert_eq!(
        a.status, 409,
        "a stopped kernel cannot be killed: {}",
        a.body
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn faults_are_validated() {
    let h = harness(chaos_config(), http_config(), two_kernels()).await;
    let cases = [
        ("/api/chaos/kernels/beta/spin", "", 400),
        ("/api/chaos/kernels/beta/spin", r#"{"ms": 0}"#, 400),
        ("/api/chaos/kernels/beta/spin", r#"{"ms": 999999}"#, 400),
        ("/api/chaos/kernels/beta/spin", "not json", 400),
        (
            "/api/chaos/kernels/beta/spin",
            r#"{"ms": 5, "extra": 1}"#,
            400,
        ),
        ("/api/chaos/kernels/beta/melt", "", 404),
        ("/api/chaos/kernels/nosuch/panic", "", 404),
        ("/api/chaos/kernels/bad%20name/panic", "", 400),
        ("/api/chaos/errors", r#"{"count": 0}"#, 400),
        (
            "/api/chaos/errors",
            r#"{"count": 3, "component": "a b"}"#,
            400,
        ),
        ("/api/chaos/errors", "", 400),
        ("/api/chaos/latency", r#"{"ms": 10}"#, 400),
        ("/api/chaos/latency", r#"{"ms": 10, "duration_s": -1}"#, 400),
    ];
    for (path, body, want) in cases {
        let a = post_auth(h.addr, &h.sys, path, body).await;
        assert_eq!(a.status, want, "{path} {body}: {}", a.body);
        let v = a.json();
        assert!(v["error"].is_string() && v["hint"].is_string(), "{v}");
    }
    let a = post_auth(
        h.addr,
        &h.sys,
        "/api/chaos/kernels/beta/spin",
        r#"{"ms": 20}"#,
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(
        kernel(h.addr, "beta").await["restarts"],
        0,
        "a spin is not a crash"
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn an_error_burst_publishes_kernel_error_events() {
    let h = harness(chaos_config(), http_config(), two_kernels()).await;
    let a = post_auth(
        h.addr,
        &h.sys,
        "/api/chaos/errors",
        r#"{"count": 25, "component": "beta", "message": "boom"}"#,
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.json()["published"], 25);
    let ok = eventually(Duration::from_secs(5), || async {
        get(h.addr, "/metrics")
            .await
            .body
            .contains("grace_kernel_errors_total{component=\"beta\"} 25")
    })
    .await;
    assert!(ok, "the burst did not reach the bus subscribers");
    h.server.shutdown().await;
}
