//! The quick chaos subset CI runs through the real binary: DIRT01 (three critical
//! kernels killed at once), DIRT02 (snapshot corruption) and DIRT03 (CPU siege), each
//! with `grace chaos run --spawn`, within their SLOs, leaving nothing behind.

mod chaos_support;

use std::path::PathBuf;
use std::process::Stdio;

use chaos_support::grace;

fn instance_dirs(harness: u32) -> Vec<PathBuf> {
    let prefix = format!("grace-chaos-{harness}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purpose: it holds nothing and runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
                != Some(Some('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn dirt01_dirt02_dirt03_pass_through_the_binary_within_their_slos() {
    let out = tempfile::tempdir().expect("tmp");
    let child = grace()
        .args(["chaos", "run", "dirt01", "dirt02", "dirt03", "--spawn"])
        .arg("--report")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grace chaos run");
    let harness = child.id();
    let o = child.wait_with_output().expect("finished");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).expect("report"))
            .expect("json");
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
