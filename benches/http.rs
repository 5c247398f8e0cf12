//! Read endpoints of a live `grace serve` (the default tree, idle): the time to answer
//! `/api/kernels`, `/operator/dashboard` and `/metrics`, one request at a time on a
//! kept-alive connection, against `/health` in the same run (the floor: a JSON verdict
//! from atomics). Requests go round the four endpoints in turn, so that whatever else
//! the machine does weighs on each alike.
//!
//! Run with: cargo bench --bench http [-- REQUESTS]   (default 500 per endpoint)
//! `GRACE_BENCH_BIN=/path/to/grace` measures another build of grace instead.
//!
//! The serve it starts is killed when it finishes or fails ([`Serve`]'s drop).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grace::state::{ServeInfo, StatePaths};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

const ENDPOINTS: [&str; 4] = ["/health", "/api/kernels", "/operator/dashboard", "/metrics"];

/// `grace serve` in a temporary directory; killed on drop.
struct Serve {
    child: Child,
    _dir: tempfile::TempDir,
    paths: StatePaths,
}

impl Serve {
    fn start() -> Serve {
        let bin =
            std::env::var("GRACE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_grace").into());
        let dir = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(dir.path().join("state"));
        let child = Command::new(bin)
            .args(["serve", "--port", "0", "--state-dir"])
            .arg(paths.root())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Serve {
            child,
            _dir: dir,
            paths,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// One request, answered whole: its time, status and body size.
async fn timed(send: &mut Sender, path: &str) -> (Duration, u16, usize) {
    let req = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .unwrap();
    let t0 = Instant::now();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (t0.elapsed(), status, body.len())
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let serve = Serve::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Healthy, every kernel started, and a reading of the triggers taken.
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            assert!(Instant::now() < deadline, "serve did not start");
            if let Some(info) = ServeInfo::read(&serve.paths).ok().flatten() {
                let a = grace::alerts::http::get(
                    info.health_addr(),
                    "/operator/dashboard",
                    Duration::from_secs(5),
                )
                .await;
                let v: serde_json::Value = a
                    .ok()
                    .and_then(|a| serde_json::from_slice(&a.body).ok())
                    .unwrap_or_default();
                if v["boot_phase"] == "running"
                    && v["triggers"]["running_count"].as_u64().unwrap_or(0) > 0
                {
                    break info.health_addr();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Let start-up settle: the tree idles from here on.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut send = connect(addr).await;
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); ENDPOINTS.len()];
        let mut sizes = [0usize; ENDPOINTS.len()];
        for round in 0..n + 20 {
            for (i, path) in ENDPOINTS.iter().enumerate() {
                let (t, status, size) = timed(&mut send, path).await;
                assert_eq!(status, 200, "{path}");
                // The first rounds warm the connection and the allocator.
                if round >= 20 {
                    times[i].push(t);
                }
                sizes[i] = size;
            }
        }
        let floor = pct(&mut times[0], 0.5);
        println!("read endpoints of an idle default tree, {n} requests each, one at a time (ms)");
        println!(
            "{:<22} {:>9} {:>9} {:>12} {:>10}",
            "endpoint", "p50", "p99", "p50 ratio", "bytes"
        );
        let mut worst = Duration::ZERO;
        for (i, path) in ENDPOINTS.iter().enumerate() {
            let (p50, p99) = (pct(&mut times[i], 0.5), pct(&mut times[i], 0.99));
            if i > 0 {
                worst = worst.max(p50);
            }
            println!(
                "{:<22} {:>9} {:>9} {:>12.1} {:>10}",
                path,
                ms(p50),
                ms(p99),
                p50.as_secs_f64() / floor.as_secs_f64(),
                sizes[i]
            );
        }
        println!();
        println!(
            "target: every read endpoint under 2 ms p50: slowest {} ms ({})",
            ms(worst),
            if worst < Duration::from_millis(2) {
                "met"
            } else {
                "MISSED"
            }
        );
    });
    drop(serve);
}
