//! The quick chaos subset CI runs through the real binary: DIRT01 (three critical
//! kernels killed at once), DIRT02 (snapshot corruption) and DIRT03 (CPU siege), each
//! with `grace chaos run --spawn`, within their SLOs, leaving nothing behind.

mod chaos_support;

use chaos_support::{alive, instance_dirs, run_spawned};

#[test]
fn dirt01_dirt02_dirt03_pass_through_the_binary_within_their_slos() {
    let run = run_spawned(&["dirt01", "dirt02", "dirt03"]);
    let (r, stdout, harness) = (&run.report, &run.stdout, run.harness);
    assert_eq!(r["passed"], true, "{stdout}");
    let scenarios = r["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["DIRT01", "DIRT02", "DIRT03"]);
    for sc in scenarios {
        let name = sc["name"].as_str().unwrap_or_default();
        assert_eq!(sc["target"], "spawned", "{name}");
        assert!(sc["error"].is_null(), "{name}: {}", sc["error"]);
        let slo = sc["max_recovery_s"].as_f64().expect("slo");
        for f in sc["faults"].as_array().expect("faults") {
            let mttd = f["mttd"].as_f64();
            let recovery = f["recovery"].as_f64();
            assert!(
                mttd.is_some() && recovery.is_some(),
                "{name}: {} was not detected or not recovered: {f}",
                f["label"]
            );
            let (mttd, recovery) = (mttd.unwrap_or_default(), recovery.unwrap_or_default());
            assert!(
                mttd <= recovery && recovery <= slo,
                "{name}: mttd {mttd} s, recovery {recovery} s, slo {slo} s"
            );
        }
        for e in sc["expectations"].as_array().expect("expectations") {
            assert_eq!(e["status"], "met", "{name}: {e}");
        }
        let tl = &sc["timeline"];
        for pid in ["serve_pids", "watchdog_pids"]
            .iter()
            .flat_map(|k| tl[*k].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["pid"].as_u64())
        {
            assert!(!alive(pid), "{name}: pid {pid} was left running");
        }
    }
    let dirs = instance_dirs(harness);
    assert!(dirs.is_empty(), "instance directory left: {dirs:?}");
}
