//! The watchdog with the real `grace serve`: start returns once healthy, a SIGKILLed or
//! SIGSTOPped serve is replaced and healthy again, status and logs report it, and a port
//! held by a stale serve of the same directory is told apart from a foreign one.

mod watchdog_support;

use std::time::Duration;

use grace::state::ServeInfo;
use grace::watchdog::PortDecision;
use nix::sys::signal::Signal;
use watchdog_support::{alive, healthy, poll, signal, Instance};

const SECS: Duration = Duration::from_secs(10);
const FAST: &str = r#"check_interval = "100ms"
health_timeout = "150ms"
health_failures = 3
min_uptime = "300ms"
stop_timeout = "3s""#;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serve_info(inst: &Instance) -> Option<ServeInfo> {
    ServeInfo::read(&inst.paths).ok().flatten()
}

#[test]
fn start_status_crash_restart_logs_and_stop_with_the_real_serve() {
    let inst = Instance::new(FAST);
    let out = ok(inst.run(&["start", "--port", "0"]));
    assert!(out.contains("healthy"), "{out}");
    let first = serve_info(&inst).expect("serve.json");
    assert!(healthy(&first));

    let status: serde_json::Value =
        serde_json::from_str(&ok(inst.run(&["status", "--json"]))).expect("status json");
    assert_eq!(status["serve"]["pid"], first.pid);
    assert_eq!(status["serve"]["alive"], true);
    assert_eq!(status["watchdog"]["alive"], true);
    assert_eq!(status["health"]["state"], "healthy");
    assert!(status["health"]["kernels"]["total"].is_u64(), "{status}");
    assert!(status["health"]["open_incidents"].is_array(), "{status}");
    assert!(status["serve"]["memory_bytes"].as_u64().unwrap_or(0) > 0);
    let text = ok(inst.run(&["status"]));
    assert!(text.contains("kill switch:  clear"), "{text}");

    signal(first.pid, Signal::SIGKILL);
    assert!(
        poll(SECS, || serve_info(&inst)
            .is_some_and(|i| i.pid != first.pid && healthy(&i))),
        "{:?}",
        inst.events()
    );
    assert!(poll(SECS, || !inst
        .events_named("grace.restart.success")
        .is_empty()));
    let logs = ok(inst.run(&["logs", "-n", "200"]));
    assert!(
        logs.contains("serve.exited") && logs.contains("killed by SIGKILL"),
        "{logs}"
    );
    assert!(
        logs.contains("serve    "),
        "serve's records are merged in: {logs}"
    );

    ok(inst.run(&["stop", "--all"]));
    assert!(inst.procs().is_empty(), "{:?}", inst.procs());
}

#[test]
fn sigstopped_serve_is_killed_and_replaced() {
    let inst = Instance::new(FAST);
    let _w = inst.watch_with(&["--port", "0"]);
    assert!(poll(SECS, || !inst.events_named("serve.ready").is_empty()));
    let first = serve_info(&inst).expect("serve.json");
    signal(first.pid, Signal::SIGSTOP);
    assert!(
        poll(SECS, || serve_info(&inst)
            .is_some_and(|i| i.pid != first.pid && healthy(&i))),
        "{:?}",
        inst.events()
    );
    assert!(!alive(first.pid));
    assert_eq!(inst.events_named("serve.hung").len(), 1);
}

#[test]
fn port_held_by_a_stale_serve_is_reclaimed_and_a_foreign_one_avoided() {
    let inst = Instance::new(FAST);
    let mut stale = watchdog_support::Proc(
        inst.grace(&["serve", "--port", "0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve"),
    );
    assert!(poll(SECS, || serve_info(&inst).is_some_and(|i| healthy(&i))));
    let info = serve_info(&inst).expect("serve.json");
    assert_eq!(info.pid, stale.id());
    // While it holds serve.lock, it is the live serve of this directory.
    assert_eq!(
        grace::watchdog::heal_port_conflict(&inst.paths, info.port),
        PortDecision::HeldByLiveServe { pid: info.pid }
    );
    // The lock file is replaced (the directory was restored, say): the old serve no
    // longer holds this directory's lock, and is stale.
    std::fs::remove_file(inst.paths.serve_lock()).expect("remove lock");
    let d = grace::watchdog::heal_port_conflict(&inst.paths, info.port);
    let PortDecision::StopStale { pid, pgid } = d else {
        panic!("expected StopStale, got {d:?}");
    };
    assert_eq!(pid, info.pid);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    // Not a group leader here (the test started it): stop the pid alone.
    let pgid = if pgid == pid as i32 { pgid } else { 0 };
    assert!(rt.block_on(grace::watchdog::stop_process(
        pid,
        pgid,
        Duration::from_secs(5)
    )));
    let _ = stale.wait(); // already reaped by stop_process when it was our child
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", info.port)).is_ok(),
        "port is free again"
    );

    // A foreign holder: a listener of this test process.
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = foreign.local_addr().expect("addr").port();
    assert_eq!(
        grace::watchdog::heal_port_conflict(&inst.paths, port),
        PortDecision::UseFreePort {
            holder: Some(std::process::id())
        }
    );
}
