//! `grace chaos run --spawn` end to end: the harness starts its own `grace watch` over
//! `grace serve --port 0` in a temporary directory, injects, measures, reports, and
//! leaves no process and no directory behind.

mod chaos_support;

use chaos_support::{alive, instance_dirs, run_spawned};

#[test]
fn process_crash_is_repaired_by_the_watchdog_and_nothing_is_left_behind() {
    let run = run_spawned(&["process_crash"]);
    let (r, stdout, harness) = (&run.report, &run.stdout, run.harness);
    assert!(
        stdout.contains("process_crash") && stdout.contains("PASS"),
        "{stdout}"
    );

    let sc = &r["scenarios"][0];
    assert_eq!(sc["target"], "spawned");
    let f = &sc["faults"][0];
    assert_eq!(f["label"], "sigkill(serve)");
    let mttd = f["mttd"].as_f64().expect("the crash was detected");
    let recovery = f["recovery"].as_f64().expect("serve came back");
    assert!(
        mttd <= recovery && recovery <= 30.0,
        "mttd {mttd}, recovery {recovery}"
    );
    // Seen as a new serve pid, or as the watchdog's own incident of the repair.
    let how = f["detected_by"].as_str().expect("how");
    assert!(
        how.contains("new serve pid") || how.contains("(watchdog)"),
        "{how}"
    );
    assert_eq!(sc["expectations"][0]["status"], "met");
    let cleanup: Vec<&str> = sc["cleanup"]
        .as_array()
        .expect("cleanup")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        cleanup.iter().any(|c| c.contains("grace stop --all")),
        "{cleanup:?}"
    );

    // Every serve and watchdog the run saw is gone, and so is the instance directory.
    let tl = &sc["timeline"];
    let pids: Vec<u64> = ["serve_pids", "watchdog_pids"]
        .iter()
        .flat_map(|k| tl[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["pid"].as_u64())
        .collect();
    assert!(pids.len() >= 3, "two serves and a watchdog: {pids:?}");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} was left running");
    }
    let dirs = instance_dirs(harness);
    assert!(dirs.is_empty(), "instance directory left: {dirs:?}");
    assert!(run.dir.path().join("process_crash.svg").is_file());
}
