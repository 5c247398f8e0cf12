//! `/metrics` of a live `grace serve` under its watchdog, after a restart of serve by
//! the watchdog, a kernel restart, an incident healed by a playbook and some HTTP
//! traffic: `promtool check metrics` (Prometheus's own linter) finds nothing to say,
//! OpenMetrics is served to a scraper that asks for it, and every metric the shipped
//! Grafana dashboard (`examples/grafana/grace.json`) queries is exported.

mod watchdog_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use grace::alerts::http::{request, HttpAnswer};
use nix::sys::signal::Signal;
use watchdog_support::{healthy, poll, signal, Instance};

const SECS: Duration = Duration::from_secs(30);
const WATCHDOG: &str = r#"check_interval = "100ms"
health_timeout = "500ms"
health_failures = 5
min_uptime = "300ms"
stop_timeout = "3s""#;
/// Chaos on; worker_pool declared hung 2 s after its last beat, checked every 250 ms.
const TREE: &str = r#"
[chaos]
enabled = true

[triggers.heartbeat_failure]
interval = "250ms"

[[kernel]]
name = "worker_pool"
kind = "worker_pool"
heartbeat_interval = "500ms"
heartbeat_timeout = "2s"

[[kernel]]
name = "kv_store"
kind = "kv_store"
restart_in_place = true
"#;

fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let host = addr.to_string();
    rt.block_on(request(
        addr,
        method,
        path,
        &host,
        None,
        headers,
        Duration::from_secs(5),
    ))
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn text(a: &HttpAnswer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

/// Every name a scraper sees: samples, and the families of `# TYPE` lines (with the
/// series names of a histogram).
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for l in exposition.lines() {
        match l.strip_prefix("# TYPE ").and_then(|t| t.split_once(' ')) {
            Some((name, "histogram")) => {
                names.extend(["", "_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
            }
            Some((name, _)) => {
                names.insert(name.to_owned());
            }
            None if l.starts_with('#') => {}
            None => names.extend(l.split(['{', ' ']).next().map(str::to_owned)),
        }
    }
    names
}

/// The metric names the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana/grace.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().expect("id")), "id twice: {p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            names.extend(
                words
                    .filter(|w| w.starts_with("grace_") || w.starts_with("process_"))
                    .map(str::to_owned),
            );
        }
    }
    names
}

fn promtool(exposition: &str) -> std::process::Output {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; bash .ci/install-deps installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    child.wait_with_output().expect("promtool")
}

#[test]
fn a_live_serve_passes_promtool_and_exports_what_the_grafana_dashboard_queries() {
    let inst = Instance::new(WATCHDOG);
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&inst.config)
        .expect("config");
    config.write_all(TREE.as_bytes()).expect("config");
    let out = inst.run(&["start", "--port", "0"]);
    assert!(out.status.success(), "{out:?}");

    // The watchdog restarts a killed serve.
    let first = inst.serve_info().expect("serve.json");
    signal(first.pid, Signal::SIGKILL);
    assert!(
        poll(SECS, || inst
            .serve_info()
            .is_some_and(|i| i.pid != first.pid && healthy(&i))),
        "{:?}",
        inst.events()
    );
    let addr = inst.serve_info().expect("serve.json").health_addr();

    // A kernel restart, and an incident that a playbook heals, once the tree runs.
    let running = poll(SECS, || {
        let a = call(addr, "GET", "/api/kernels", &[]);
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        let up = |name: &str| {
            v["kernels"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|k| k["name"] == name && k["state"] == "running")
            })
        };
        up("kv_store") && up("worker_pool")
    });
    assert!(running, "the tree never ran");
    let token = std::fs::read_to_string(inst.paths.token()).expect("token");
    let auth = format!("Bearer {}", token.trim());
    let bearer = [("authorization", auth.as_str())];
    for fault in ["kv_store/panic", "worker_pool/hang"] {
        let a = call(
            addr,
            "POST",
            &format!("/api/chaos/kernels/{fault}"),
            &bearer,
        );
        assert_eq!(a.status, 202, "{fault}: {}", text(&a));
    }
    let healed = poll(SECS, || {
        let a = call(addr, "GET", "/api/incidents", &[]);
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        v["incidents"].as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i["trigger"] == "heartbeat_failure" && i["status"] == "resolved")
        })
    });
    assert!(
        healed,
        "{}",
        text(&call(addr, "GET", "/api/incidents", &[]))
    );
    for path in ["/health", "/api/kernels", "/operator/dashboard", "/nope"] {
        call(addr, "GET", path, &[]);
    }

    // The watchdog's record is read by the readings task, every second.
    let mut body = String::new();
    let complete = poll(SECS, || {
        body = text(&call(addr, "GET", "/metrics", &[]));
        body.contains("grace_watchdog_serve_restarts_total{cause=\"killed\"} 1\n")
    });
    assert!(complete, "{body}");
    for want in [
        "grace_restarts_total{kernel=\"kv_store\",reason=\"panic\",outcome=\"success\"} 1\n",
        "grace_incident_mttr_seconds_count 1\n",
        "grace_playbook_runs_total{playbook=\"restart_kernel\",outcome=\"success\"}",
        "grace_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n",
        "grace_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/health\"}",
        "grace_kernel_handle_latency_seconds_bucket{le=\"0.001\",kernel=\"kv_store\"}",
        "grace_watchdog_running 1\n",
        "grace_watchdog_serve_last_exit_timestamp_seconds{cause=\"killed\"}",
        "process_open_fds ",
        "grace_build_info{version=\"",
    ] {
        assert!(body.contains(want), "missing {want:?}:\n{body}");
    }

    let lint = promtool(&body);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(lint.status.success(), "promtool: {said}");
    assert_eq!(said.trim(), "", "promtool warnings");

    let om = call(
        addr,
        "GET",
        "/metrics",
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3",
        )],
    );
    let om = text(&om);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE grace_restarts counter\n"), "{om}");

    let names = exported(&body);
    let missing: Vec<_> = dashboard_metrics()
        .into_iter()
        .filter(|m| !names.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not exported"
    );
    let out = inst.run(&["stop"]);
    assert!(out.status.success(), "{out:?}");
}
