//! Shared helpers of the `http_*` tests: a real System on a temporary state directory,
//! a small HTTP/1.1 client, and a polling helper.

#![allow(dead_code)]

pub mod cdp;
pub mod tree;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grace::config::Config;
use grace::state::StatePaths;
use grace::tree::System;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A System over a fresh temporary state directory.
pub fn system(config: Config) -> (Arc<System>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("open system");
    (sys, dir)
}

/// Sends one request.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("answer within 20 s")
        .expect("http request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Writes `bytes` on a new connection and reads one answer: status and body.
pub async fn raw(addr: SocketAddr, bytes: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes.as_bytes()).await.expect("write");
    read_answer(&mut s).await
}

/// Reads one answer from `s`: status and body.
pub async fn read_answer(s: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = s.read(&mut buf).await.expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((h, body)) = text.split_once("\r\n\r\n") {
                let len = h
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    let status = h.split_whitespace().nth(1).and_then(|c| c.parse().ok());
                    return (status.unwrap_or(0), body.to_owned());
                }
            }
            assert!(n > 0, "closed without an answer: {text:?}");
        }
    })
    .await;
    answer.expect("an answer within 5 s")
}

/// `GET path`, or None when the server does not answer (not listening, connection
/// closed).
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<Answer> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::builder()
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    Some(Answer {
        status,
        content_type: String::new(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, "GET", path, &[], Bytes::new()).await
}

/// `POST path` with the bearer token of `sys` and a JSON body.
pub async fn post_auth(addr: SocketAddr, sys: &System, path: &str, body: &str) -> Answer {
    let token = std::fs::read_to_string(sys.paths.token()).expect("token file");
    let auth = format!("Bearer {}", token.trim());
    send(
        addr,
        "POST",
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `[http]` section on a free loopback port.
pub fn http_config() -> grace::http::HttpConfig {
    grace::http::HttpConfig {
        port: 0,
        ..Default::default()
    }
}

/// A running System with kernels under a supervisor named `kernels` (plus the
/// `message_bus` kernel under `system`) and its HTTP server on a free loopback port.
pub struct Harness {
    pub sys: Arc<System>,
    pub dir: tempfile::TempDir,
    pub server: grace::http::HttpServer,
    pub addr: SocketAddr,
    pub supervisors: Vec<grace::supervisor::SupervisorHandle>,
}

/// Starts a [`Harness`].
pub async fn harness(
    config: Config,
    http: grace::http::HttpConfig,
    kernels: Vec<grace::kernel::KernelSpec>,
) -> Harness {
    let (sys, dir) = system(config);
    let bus = grace::kernel::KernelSpec::new(
        "message_bus",
        Arc::new(|| Box::new(grace::bus::MessageBusKernel::default())),
    )
    .critical();
    let supervisors = vec![
        tree::supervise(&sys, "system", vec![bus]).await,
        tree::supervise(&sys, "kernels", kernels).await,
    ];
    let server = grace::http::start(sys.clone(), &http, None, None)
        .await
        .expect("start http");
    let addr = server.local_addr();
    Harness {
        sys,
        dir,
        server,
        addr,
        supervisors,
    }
}

/// The default kernels of the API tests: `alpha` (critical) and `beta`.
pub fn two_kernels() -> Vec<grace::kernel::KernelSpec> {
    vec![tree::counter("alpha", true), tree::counter("beta", false)]
}

/// `GET /api/kernels` and the entry of `name`.
pub async fn kernel(addr: SocketAddr, name: &str) -> serde_json::Value {
    let v = get(addr, "/api/kernels").await.json();
    v["kernels"]
        .as_array()
        .expect("kernels list")
        .iter()
        .find(|k| k["name"] == name)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}
