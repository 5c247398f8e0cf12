//! `GET /health` over real HTTP, and binding: free port, taken port, shutdown.

mod http_support;

use grace::config::Config;
use grace::http::{self, HttpError};
use http_support::*;

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
