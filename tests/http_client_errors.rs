//! Client-caused errors over real HTTP on loopback, in the tree `grace serve` runs:
//! a request body that never fully arrives is answered 408 and a client that breaks
//! off its body is not counted either; neither is an API timeout, so api_timeout stays
//! quiet. A handler that really is slow still is (504, incident). A client that never
//! finishes its headers is disconnected after `[http] header_timeout`.

mod http_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grace::config::Config;
use grace::http::{self, HttpKernel, HttpServer};
use grace::kernel::KernelSpec;
use grace::supervisor::ChildSpec;
use grace::tree::{Extensions, System, Tree};
use http_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// The tree with chaos endpoints, a 300 ms request timeout, and only api_timeout
/// (one timeout fires it, checked every 100 ms); playbooks only log.
async fn serve() -> (Tree, Arc<System>, SocketAddr, tempfile::TempDir) {
    let mut config = Config::default();
    config.chaos.enabled = true;
    config.playbooks.dry_run = true;
    config.triggers.enable_only(&["api_timeout"]);
    config.triggers.api_timeout.interval = 100 * MS;
    config.triggers.api_timeout.min_timeouts = 1;
    let http_cfg = grace::http::HttpConfig {
        request_timeout: 300 * MS,
        ..http_config()
    };
    let (sys, dir) = system(config);
    let server: HttpServer = http::start(sys.clone(), &http_cfg, None, None)
        .await
        .expect("start http");
    let addr = server.local_addr();
    let http_child = ChildSpec::kernel(KernelSpec::new("http", HttpKernel::factory(server)));
    let tree = Tree::start(
        &sys,
        Extensions {
            http: Some(http_child),
            ..Extensions::default()
        },
    )
    .await
    .expect("tree");
    (tree, sys, addr, dir)
}

/// Headers of a POST to the latency endpoint announcing `length` body bytes.
fn head(sys: &System, length: usize) -> String {
    let token = std::fs::read_to_string(sys.paths.token()).expect("token");
    format!(
        "POST /api/chaos/latency HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        token.trim()
    )
}

fn api_timeout_incidents(sys: &System) -> usize {
    sys.incidents
        .recent(50)
        .iter()
        .filter(|i| i.trigger == "api_timeout")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_broken_off_body_is_the_clients_error_not_an_api_timeout() {
    let (tree, sys, addr, _dir) = serve().await;

    // Six clients announce 100 bytes and send 2.
    let stalled = (0..6).map(|_| {
        let req = format!("{}{{\"", head(&sys, 100));
        tokio::spawn(async move { raw(addr, &req).await })
    });
    for answer in futures::future::join_all(stalled).await {
        let (status, body) = answer.expect("client task");
        assert_eq!(status, 408, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("2 bytes")),
            "{v}"
        );
        assert!(v["hint"]
            .as_str()
            .is_some_and(|h| h.contains("Content-Length")));
    }
    // A client that goes away in the middle of its body.
    {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("{}{{\"ms\"", head(&sys, 100));
        s.write_all(req.as_bytes()).await.expect("write");
    }
    tokio::time::sleep(500 * MS).await;
    assert_eq!(
        sys.api.total_timeouts(),
        0,
        "the api_timeout trigger's counter"
    );
    assert_eq!(sys.api.total_requests(), 0, "no latency sample either");
    let m = get(addr, "/metrics").await.body;
    assert!(m.contains("grace_http_timeouts_total 0"), "{m}");
    assert_eq!(
        api_timeout_incidents(&sys),
        0,
        "{:?}",
        sys.incidents.recent(5)
    );

    // A whole body is served as before.
    let body = r#"{"ms": 0, "duration_s": 0}"#;
    let (status, answer) = raw(addr, &format!("{}{body}", head(&sys, body.len()))).await;
    assert_eq!(status, 202, "{answer}");

    // The handler's own slowness still is an API timeout, and fires the trigger.
    let a = post_auth(
        addr,
        &sys,
        "/api/chaos/latency",
        r#"{"ms": 2000, "duration_s": 30}"#,
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(get(addr, "/api/kernels").await.status, 504);
    assert_eq!(sys.api.total_timeouts(), 1);
    let fired = eventually(5 * S, || async { api_timeout_incidents(&sys) == 1 }).await;
    assert!(fired, "{:?}", sys.incidents.recent(5));
    tree.shutdown(5 * S).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_after_the_header_timeout() {
    let http_cfg = grace::http::HttpConfig {
        header_timeout: 300 * MS,
        ..http_config()
    };
    let h = harness(Config::default(), http_cfg, two_kernels()).await;
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(5 * S, s.read(&mut buf))
        .await
        .expect("the server closes the connection");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    let after = started.elapsed();
    assert!(after >= 250 * MS, "closed after {after:?}");
    assert_eq!(h.server.stats().timeouts(), 0);
    assert_eq!(h.sys.api.total_timeouts(), 0);
    // Whole requests are served as before, on new connections.
    assert_eq!(get(h.addr, "/health").await.status, 200);
    h.server.shutdown().await;
}
