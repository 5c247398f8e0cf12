//! A repair of the real `grace serve` by the watchdog becomes an incident: SIGKILLed or
//! SIGSTOPped, serve is replaced, and the next serve records one `serve` incident,
//! resolved `recovered_by_restart`, with its MTTR; restarts after it never duplicate it.

mod watchdog_support;

use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use serde_json::Value;
use watchdog_support::{poll, signal, Instance};

const SECS: Duration = Duration::from_secs(10);
const FAST: &str = r#"check_interval = "100ms"
health_timeout = "150ms"
health_failures = 3
min_uptime = "300ms"
stop_timeout = "3s""#;

fn serve_info(inst: &Instance) -> Option<ServeInfo> {
    ServeInfo::read(&inst.paths).ok().flatten()
}

fn healthy(info: &ServeInfo) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(grace::alerts::http::get(
        info.health_addr(),
        "/health",
        Duration::from_secs(1),
    ))
    .is_ok_and(|a| a.status == 200)
}

/// The `serve` incidents `grace incidents --json` lists.
fn serve_incidents(inst: &Instance) -> Vec<Value> {
    let out = inst.run(&["incidents", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["component"] == "serve")
        .cloned()
        .collect()
}

/// Waits for a serve other than `old` that answers `/health` and that the watchdog saw
/// answer; returns it.
fn replaced(inst: &Instance, old: u32) -> ServeInfo {
    let mut found = None;
    let ok = poll(SECS, || {
        found = serve_info(inst).filter(|i| i.pid != old && healthy(i));
        found.as_ref().is_some_and(|i| {
            inst.events().iter().any(|e| {
                (e["event"] == "serve.ready" || e["event"] == "grace.restart.success")
                    && e["pid"] == i.pid
            })
        })
    });
    assert!(ok, "no new healthy serve: {:?}", inst.events());
    found.expect("found")
}

fn assert_repair(inc: &Value, failure_mode: &str, pid: u32) {
    assert_eq!(inc["trigger"], "watchdog", "{inc}");
    assert_eq!(inc["failure_mode"], failure_mode, "{inc}");
    assert_eq!(inc["status"], "resolved", "{inc}");
    assert_eq!(inc["closed_reason"], "recovered_by_restart", "{inc}");
    assert_eq!(inc["success"], true, "{inc}");
    assert_eq!(inc["details"]["watchdog_repair"]["pid"], pid, "{inc}");
    let mttr = inc["mttr_seconds"].as_f64().expect("mttr");
    assert!(mttr > 0.0 && mttr < 10.0, "{inc}");
}

#[test]
fn a_sigkilled_serve_becomes_one_resolved_serve_incident_and_stays_one() {
    let inst = Instance::new(FAST);
    let _w = inst.watch_with(&["--port", "0"]);
    let first = replaced(&inst, 0);
    signal(first.pid, Signal::SIGKILL);
    let second = replaced(&inst, first.pid);
    // The repair is recorded once the new serve answered; that serve imports it.
    assert!(
        poll(SECS, || serve_incidents(&inst).len() == 1),
        "{:?}",
        inst.events()
    );
    let inc = &serve_incidents(&inst)[0];
    assert_repair(inc, "serve_crash", first.pid);
    assert_eq!(inc["details"]["watchdog_repair"]["signal"], "SIGKILL");
    assert_eq!(inc["details"]["watchdog_repair"]["new_pid"], second.pid);
    assert_eq!(inst.events_named("watchdog.repair_recorded").len(), 1);

    // A restart that is not a fault (SIGHUP to the watchdog) imports nothing new.
    signal(_w.id(), Signal::SIGHUP);
    let third = replaced(&inst, second.pid);
    assert_eq!(serve_incidents(&inst).len(), 1);

    // Another crash is another incident; the first is not imported again.
    signal(third.pid, Signal::SIGKILL);
    replaced(&inst, third.pid);
    assert!(poll(SECS, || serve_incidents(&inst).len() == 2));
    let seqs: Vec<u64> = serve_incidents(&inst)
        .iter()
        .map(|i| {
            i["details"]["watchdog_repair"]["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, [0, 1]);
}

#[test]
fn a_hung_serve_becomes_a_serve_hang_incident() {
    let inst = Instance::new(FAST);
    let _w = inst.watch_with(&["--port", "0"]);
    let first = replaced(&inst, 0);
    signal(first.pid, Signal::SIGSTOP);
    replaced(&inst, first.pid);
    assert!(
        poll(SECS, || serve_incidents(&inst).len() == 1),
        "{:?}",
        inst.events()
    );
    let inc = &serve_incidents(&inst)[0];
    assert_repair(inc, "serve_hang", first.pid);
    assert_eq!(
        inc["details"]["watchdog_repair"]["reason"],
        "hung: health probe failed"
    );
}
