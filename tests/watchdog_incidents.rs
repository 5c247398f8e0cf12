//! A repair of the real `grace serve` by the watchdog becomes an incident: SIGKILLed or
//! SIGSTOPped, serve is replaced, and the next serve records one `serve` incident,
//! resolved `recovered_by_restart`, with its MTTR; restarts after it never duplicate it.
//! A crash loop that ends in a pause and a healthy start is one repair too.

mod watchdog_support;

use std::time::Duration;

use grace::audit::{AuditConfig, AuditLog};
use grace::incident::{import_watchdog_repairs, IncidentStore, IncidentsConfig};
use grace::state::ServeInfo;
use grace::watchdog::incident_record::{read_repairs, repairs_path, Cause};
use nix::sys::signal::Signal;
use serde_json::Value;
use watchdog_support::{fake_serve_main, get, healthy, poll, signal, Instance};

const SECS: Duration = Duration::from_secs(10);
const FAST: &str = r#"check_interval = "100ms"
health_timeout = "150ms"
health_failures = 3
min_uptime = "300ms"
stop_timeout = "3s""#;

fn serve_info(inst: &Instance) -> Option<ServeInfo> {
    ServeInfo::read(&inst.paths).ok().flatten()
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
                (e["message"] == "serve.ready" || e["message"] == "grace.restart.success")
                    && e["fields"]["pid"] == i.pid
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
    // The running serve's API lists it like any incident.
    let api = get(&second, "/api/incidents").expect("GET /api/incidents");
    let doc: Value = serde_json::from_slice(&api.body).expect("json");
    let listed = doc["incidents"].as_array().expect("incidents");
    assert!(
        listed
            .iter()
            .any(|i| i["incident_id"] == inc["incident_id"]),
        "{doc}"
    );

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

/// Entry of the fake serve process (this binary re-executed by the watchdog).
#[test]
fn fake_serve_entry() {
    if fake_serve_main() {
        return;
    }
    assert!(std::env::var_os(watchdog_support::FAKE_SERVE).is_none());
}

#[test]
fn a_crash_loop_ended_by_a_healthy_start_is_one_serve_crash_loop_incident() {
    let inst = Instance::new("");
    let dir = inst.root().display().to_string();
    // The first two starts exit 1; the third is a (fake) serve that answers /health.
    let script = format!(
        "if [ $(cat {dir}/fails 2>/dev/null | wc -l) -ge 2 ]; then exec \"$0\" \"$@\"; fi; \
         echo x >> {dir}/fails; exit 1"
    );
    let exe = std::env::current_exe().expect("exe").display().to_string();
    let cfg = format!(
        "[watchdog]\ncommand = [\"sh\", \"-c\", {script:?}, {exe:?}, \"--exact\", \
         \"fake_serve_entry\", \"--nocapture\", \"--test-threads=1\", {dir:?}]\n\
         health_check = true\ncheck_interval = \"100ms\"\nhealth_timeout = \"100ms\"\n\
         min_uptime = \"200ms\"\nmax_consecutive_failures = 2\n\
         pause_after_failures = \"300ms\"\nbackoff_initial = \"10ms\"\nstop_timeout = \"1s\"\n"
    );
    std::fs::write(&inst.config, cfg).expect("config");
    let _w = inst.watch();
    let path = repairs_path(&inst.paths);
    assert!(
        poll(SECS, || read_repairs(&path)
            .is_ok_and(|(r, _)| r.len() == 1)),
        "{:?}",
        inst.events()
    );
    let (repairs, _) = read_repairs(&path).expect("read");
    let r = &repairs[0];
    assert_eq!(r.cause, Cause::CrashLoop, "{r:?}");
    assert_eq!(r.reason, "exited with status 1");
    assert_eq!(r.exit_code, Some(1));
    assert_eq!(r.failed_starts, 1);
    assert_eq!(inst.events_named("watchdog.crash_loop").len(), 1);

    let audit = AuditLog::open(&inst.paths.audit_log(), &AuditConfig::default()).expect("audit");
    let store = IncidentStore::load(
        &inst.paths.incidents(),
        std::sync::Arc::new(audit),
        &IncidentsConfig::default(),
    )
    .expect("store");
    assert_eq!(
        import_watchdog_repairs(&store, &inst.paths).expect("import"),
        1
    );
    let inc = &store.for_component("serve", 5)[0];
    assert_eq!(inc.failure_mode, "serve_crash_loop");
    // Detected at the first exit; recovered after the pause.
    let mttr = inc.mttr_seconds.expect("mttr");
    assert!((0.3..10.0).contains(&mttr), "{inc:?}");
}
