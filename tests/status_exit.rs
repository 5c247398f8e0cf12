//! `grace status` with the real binary: its verdict line and its LSB exit status (0
//! serve runs healthy, 1 degraded or dead with its pid left, 3 not running), against
//! nothing and against a real `grace serve` whose kernel is stopped over the chaos API.

mod watchdog_support;

use std::process::{Output, Stdio};
use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use watchdog_support::{alive, poll, signal, Instance, Proc};

const CONFIG: &str = r#"[triggers]
enabled = false

[chaos]
enabled = true

[[kernel]]
name = "kv_store"
kind = "kv_store"
"#;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn http(
    info: &ServeInfo,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Option<grace::alerts::http::HttpAnswer> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let auth = token.map(|t| format!("Bearer {}", t.trim()));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let body = (method == "POST").then(|| ("application/json", b"{}".to_vec()));
    rt.block_on(grace::alerts::http::request(
        info.health_addr(),
        method,
        path,
        "localhost",
        body,
        &headers,
        Duration::from_secs(2),
    ))
    .ok()
}

#[test]
fn with_nothing_running_status_exits_3() {
    let inst = Instance::new("");
    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("serve:        not running"),
        "{}",
        text(&out)
    );
}

#[test]
fn status_exits_0_healthy_1_degraded_and_1_dead_with_its_pid_left() {
    let inst = Instance::new("");
    std::fs::write(&inst.config, CONFIG).expect("config");
    let mut serve = Proc(
        inst.grace(&["serve", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn grace serve"),
    );
    let info = || ServeInfo::read(&inst.paths).ok().flatten();
    assert!(
        poll(Duration::from_secs(8), || info()
            .and_then(|i| http(&i, "GET", "/ready", None))
            .is_some_and(|a| a.status == 200)),
        "serve never became ready"
    );
    let info = info().expect("serve.json");

    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("health:       healthy"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("incidents:    0 open"),
        "{}",
        text(&out)
    );

    let token = std::fs::read_to_string(inst.paths.token()).expect("token");
    let a = http(
        &info,
        "POST",
        "/api/chaos/kernels/kv_store/stop",
        Some(&token),
    )
    .expect("stop");
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    let line = t
        .lines()
        .find(|l| l.starts_with("health:"))
        .unwrap_or_else(|| panic!("no health line: {t}"));
    assert!(line.contains("degraded"), "{line}");
    assert!(line.contains("kernel kv_store stopped"), "{line}");
    let out = inst.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(v["health"]["state"], "degraded");
    let first = v["health"]["reasons"][0].as_str().unwrap_or_default();
    assert!(first.starts_with("kernel kv_store stopped"), "{v}");

    let a = http(&info, "POST", "/api/kernels/kv_store/restart", Some(&token)).expect("restart");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    signal(serve.id(), Signal::SIGKILL);
    let _ = serve.wait();
    assert!(!alive(info.pid));
    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("stale pid"), "{}", text(&out));
}
