//! The HTTP server's limits over real connections on loopback: every error answer has a
//! JSON body, hyper's own 400/414/431 included; past the connection limit with every
//! connection busy a new one gets 503 with a JSON body; and the real `grace serve` under
//! a low descriptor limit (prlimit) keeps answering `/health` while more idle
//! connections than its limit are held open, closing the oldest idle ones.

mod http_support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use grace::config::Config;
use grace::state::{ServeInfo, StatePaths};
use http_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const S: Duration = Duration::from_secs(1);

/// Asserts a JSON error body with an error and a hint.
fn json_error(status: u16, body: &str, want: u16) {
    assert_eq!(status, want, "{body}");
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{want}: not JSON ({e}): {body:?}"));
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    assert!(v["hint"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

/// A request announcing a 10-byte body and sending none: its handler waits for the
/// body, so the connection stays busy.
async fn held(addr: SocketAddr, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/chaos/latency HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s
}

#[tokio::test]
async fn every_error_answer_is_json_and_a_connection_past_a_busy_limit_gets_503() {
    let mut config = Config::default();
    config.chaos.enabled = true;
    let http = grace::http::HttpConfig {
        max_connections: 2,
        ..http_config()
    };
    let h = harness(config, http, two_kernels()).await;
    let addr = h.addr;

    // Answers hyper writes itself, for requests it cannot parse.
    let (st, body) = raw(addr, "GARBAGE\r\n\r\n").await;
    json_error(st, &body, 400);
    let (st, body) = raw(addr, "GET /health HTTP/1.1\r\nNo colon here\r\n\r\n").await;
    json_error(st, &body, 400);
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let (st, body) = raw(addr, &long).await;
    json_error(st, &body, 414);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (st, body) = raw(addr, &format!("GET /health HTTP/1.1\r\n{many}\r\n")).await;
    json_error(st, &body, 431);

    // Answers of the router and its layers.
    let a = get(addr, "/nope").await;
    json_error(a.status, &a.body, 404);
    let a = get(addr, "/api/kernels/alpha/restart").await;
    json_error(a.status, &a.body, 405);
    let a = send(addr, "POST", "/api/kernels/alpha/restart", &[], "").await;
    json_error(a.status, &a.body, 401);
    let big = format!("{{\"ms\": 1, \"pad\": \"{}\"}}", "x".repeat(100_000));
    let a = post_auth(addr, &h.sys, "/api/chaos/latency", &big).await;
    json_error(a.status, &a.body, 413);

    // Two connections busy (each waiting for a body): a third one is turned away.
    let token = std::fs::read_to_string(h.sys.paths.token()).expect("token");
    let busy = [
        held(addr, token.trim()).await,
        held(addr, token.trim()).await,
    ];
    let counted = eventually(5 * S, || async { h.server.connections().in_progress == 2 }).await;
    assert!(counted, "{:?}", h.server.connections());
    let (st, body) = raw(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    json_error(st, &body, 503);
    assert!(body.contains("limit of 2"), "{body}");
    drop(busy);
    let back = eventually(5 * S, || async {
        try_get(addr, "/health")
            .await
            .is_some_and(|a| a.status == 200)
    })
    .await;
    assert!(
        back,
        "/health never answered again once the busy connections closed"
    );
    let m = get(addr, "/metrics").await.body;
    assert!(m.contains("grace_http_connections_limit 2\n"), "{m}");
    assert!(
        !m.contains("grace_http_connections_rejected_total 0\n"),
        "{m}"
    );
    h.server.shutdown().await;
}

/// `grace serve` of the default tree in a directory of its own, under `prlimit`.
struct Serve {
    child: Child,
    dir: tempfile::TempDir,
}

impl Serve {
    fn start(nofile: u64) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_grace"))
            .args(["serve", "--port", "0", "--state-dir"])
            .arg(dir.path().join("state"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.err")).expect("log"))
            .spawn()
            .expect("spawn prlimit (util-linux) with grace serve");
        Serve { child, dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.err")).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of an unlabelled sample in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_keeps_answering_with_more_idle_connections_than_the_limit_under_a_low_descriptor_limit(
) {
    let serve = Serve::start(192);
    let paths = StatePaths::new(serve.dir.path().join("state"));
    let ready = eventually(60 * S, || async {
        let Some(info) = ServeInfo::read(&paths).ok().flatten() else {
            return false;
        };
        try_get(info.health_addr(), "/health")
            .await
            .is_some_and(|a| a.status == 200)
    })
    .await;
    assert!(ready, "serve never became healthy: {}", serve.stderr());
    let addr = ServeInfo::read(&paths)
        .ok()
        .flatten()
        .expect("serve.json")
        .health_addr();
    let m = get(addr, "/metrics").await.body;
    let limit = sample(&m, "grace_http_connections_limit").expect("limit") as usize;
    assert!(
        limit < 192,
        "the limit {limit} ignores the descriptor limit: {m}"
    );
    let fds_read = eventually(5 * S, || async {
        sample(&get(addr, "/metrics").await.body, "process_max_fds") == Some(192.0)
    })
    .await;
    assert!(fds_read, "process_max_fds is not the prlimit");

    // As many idle connections as the limit, then more once those are old enough to
    // give way (250 ms): each new one closes the oldest idle one.
    let mut idle = Vec::new();
    for _ in 0..limit {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let answered = eventually(5 * S, || async {
        try_get(addr, "/health")
            .await
            .is_some_and(|a| a.status == 200)
    })
    .await;
    assert!(answered, "/health never answered past idle connections");
    for _ in 0..60 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    for i in 0..20 {
        let a = try_get(addr, "/health").await;
        assert!(
            a.as_ref().is_some_and(|a| a.status == 200),
            "/health #{i} with {} idle connections held: {:?}\n{}",
            idle.len(),
            a.map(|a| (a.status, a.body)),
            serve.stderr()
        );
    }
    let m = get(addr, "/metrics").await.body;
    let evicted = sample(&m, "grace_http_connections_evicted_total").expect("evicted");
    assert!(evicted >= 60.0, "{evicted} idle connections closed: {m}");
    let open = sample(&m, "grace_http_connections").expect("open");
    assert!(
        open <= limit as f64 + 1.0,
        "{open} open past the limit {limit}"
    );
    assert!(
        !serve.stderr().contains("http accept failed"),
        "serve ran out of descriptors: {}",
        serve.stderr()
    );
    drop(idle);
}
