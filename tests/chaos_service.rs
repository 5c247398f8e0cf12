//! Probes of the user's service and held connections, through the real binary against
//! real loopback listeners the test starts: `service_http` and `tcp_connect` in the
//! steady state, `stall_uploads` seen from the receiving end, and addresses off the
//! host refused with their line.

mod chaos_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_support::{grace, report, scenario};

/// What one connection to the fake target sent.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: usize,
    held: Duration,
}

/// A loopback HTTP server: every GET gets 200 (`/api/kernels` and `/api/incidents`
/// empty lists), and every connection's head and body size are recorded once the
/// client closes it.
fn fake_server() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || serve_one(c, &s));
        }
    });
    (port, seen)
}

fn serve_one(mut c: TcpStream, seen: &Mutex<Vec<Received>>) {
    let opened = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if head.starts_with("GET ") {
        let body = if head.starts_with("GET /api/") {
            "[]"
        } else {
            "{}"
        };
        let _ = write!(
            c,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    // An upload: read what the client sends until it closes the connection.
    let mut body = buf.len() - head_end;
    while let Ok(n) = c.read(&mut chunk) {
        if n == 0 {
            break;
        }
        body += n;
    }
    seen.lock().expect("lock").push(Received {
        head,
        body,
        held: opened.elapsed(),
    });
}

fn run(dir: &std::path::Path, file: &std::path::Path, target: u16) -> Output {
    grace()
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["chaos", "run"])
        .arg(file)
        .args(["--target", &format!("http://127.0.0.1:{target}")])
        .arg("--report")
        .arg(dir.join("report"))
        .stdin(Stdio::null())
        .output()
        .expect("grace chaos run")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

#[test]
fn service_probes_hold_and_stalled_uploads_send_two_of_a_hundred_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let (target, uploads) = fake_server();
    let (service, _) = fake_server();
    let file = scenario(
        dir.path(),
        "stall",
        &format!(
            r#"
name: stall
steady_state:
  - service_http: {{ url: "http://127.0.0.1:{service}/index.html", status: 200 }}
  - tcp_connect: "127.0.0.1:{service}"
faults:
  - at: 0s
    fault: stall_uploads
    connections: 3
    path: /upload
    duration: 1s
slo: {{ max_recovery: 5s }}
warmup: 5s
timeout: 5s
poll: 20ms
"#
        ),
    );
    let o = run(dir.path(), &file, target);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report(&dir.path().join("report"));
    let sc = &r["scenarios"][0];
    assert_eq!(sc["steady_restored"], true, "{sc}");
    let probes = &sc["timeline"]["probes"];
    for label in [
        format!("service_http(http://127.0.0.1:{service}/index.html -> 200)"),
        format!("tcp_connect(127.0.0.1:{service})"),
    ] {
        let changes = probes[&label].as_array().expect(&label);
        assert_eq!(changes.len(), 1, "{label} never failed: {changes:?}");
        assert_eq!(changes[0]["ok"], true, "{label}");
    }
    let note = sc["faults"][0]["notes"][0].as_str().expect("note");
    assert!(
        note.contains("3 uploads") && note.contains("2 of 100"),
        "{note}"
    );

    // The receiving end saw three uploads announcing 100 bytes, got 2, and was held
    // for the fault's duration before the harness closed them.
    let got = uploads.lock().expect("lock").clone();
    assert_eq!(got.len(), 3, "{got:?}");
    for u in &got {
        assert!(
            u.head.starts_with("POST /upload HTTP/1.1\r\n"),
            "{}",
            u.head
        );
        assert!(u.head.contains("Content-Length: 100\r\n"), "{}", u.head);
        assert_eq!(u.body, 2, "{u:?}");
        assert!(u.held >= Duration::from_millis(900), "{u:?}");
    }
}

#[test]
fn a_service_that_does_not_answer_fails_the_steady_state_before_injection() {
    let dir = tempfile::tempdir().expect("tmp");
    let (target, uploads) = fake_server();
    let down = free_port();
    let file = scenario(
        dir.path(),
        "down",
        &format!(
            r#"
name: down
steady_state:
  - service_http: {{ url: "http://127.0.0.1:{down}/" }}
faults:
  - {{ at: 0s, fault: idle_connections, connections: 2, duration: 1s }}
slo: {{ max_recovery: 5s }}
warmup: 1s
"#
        ),
    );
    let o = run(dir.path(), &file, target);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let r = report(&dir.path().join("report"));
    let err = r["scenarios"][0]["error"].as_str().expect("error");
    assert!(
        err.contains("does not hold before injection")
            && err.contains(&format!("GET http://127.0.0.1:{down}/")),
        "{err}"
    );
    assert!(uploads.lock().expect("lock").is_empty(), "nothing injected");
}

#[test]
fn addresses_off_the_host_are_refused_with_their_line() {
    let dir = tempfile::tempdir().expect("tmp");
    for (probe, needle) in [
        (
            r#"service_http: { url: "http://10.1.2.3:80/" }"#,
            "10.1.2.3 is not a loopback address",
        ),
        (r#"tcp_connect: "example.com:80""#, "not an IP address"),
    ] {
        let file = scenario(
            dir.path(),
            "off",
            &format!(
                "name: off\nsteady_state:\n  - health_ok\n  - {probe}\nfaults:\n  - {{ fault: kill_kernel, kernel: a }}\nslo: {{ max_recovery: 5s }}\n"
            ),
        );
        let o = grace()
            .args(["chaos", "run"])
            .arg(&file)
            .arg("--spawn")
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("off.yaml, line 4") && stderr.contains(needle),
            "{stderr}"
        );
    }
}

#[test]
fn a_spawned_instance_runs_under_its_descriptor_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let seen = dir.path().join("nofile.txt");
    // An exec kernel started by serve writes the limit it inherited.
    let file = scenario(
        dir.path(),
        "limit",
        &format!(
            r#"
name: limit
spawn: {{ nofile: 64 }}
config:
  triggers: {{ enabled: false }}
  kernel:
    - name: probe
      kind: exec
      options: {{ command: sh, args: ["-c", "ulimit -n > {}; exec sleep 3600"] }}
before:
  - kernel_running: probe
faults:
  - {{ at: 0s, fault: idle_connections, connections: 2, duration: 100ms }}
slo: {{ max_recovery: 5s }}
"#,
            seen.display()
        ),
    );
    let o = grace()
        .args(["chaos", "run"])
        .arg(&file)
        .arg("--spawn")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let limit = std::fs::read_to_string(&seen).expect("the kernel wrote its limit");
    assert_eq!(limit.trim(), "64");
}
