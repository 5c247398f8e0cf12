//! The harm scenarios CI runs through the real binary, each with the user's own web
//! server as an exec kernel and that server answering as its steady state: a crash of
//! the server is its supervisor's to repair (no quarantine), stalled uploads are the
//! client's fault (no API timeout, no restart of serve), an incident left mid-playbook by
//! a killed serve is closed by the next one, and exhausted descriptors are not drift.

mod chaos_support;

use chaos_support::{instance_dirs, run_spawned};

#[test]
fn the_harm_scenarios_leave_the_users_service_answering_and_the_verdicts_true() {
    let names = [
        "exec_kernel_crash",
        "stalled_uploads",
        "serve_killed_mid_playbook",
        "descriptors_exhausted",
    ];
    let run = run_spawned(&names);
    let (r, stdout, harness) = (&run.report, &run.stdout, run.harness);
    assert_eq!(r["passed"], true, "{stdout}");
    let scenarios = r["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), names.len(), "{stdout}");
    for sc in scenarios {
        let name = sc["name"].as_str().unwrap_or_default();
        assert!(sc["error"].is_null(), "{name}: {}", sc["error"]);
        assert_eq!(sc["steady_restored"], true, "{name}: {stdout}");
        for e in sc["expectations"].as_array().expect("expectations") {
            assert_eq!(e["status"], "met", "{name}: {e}");
        }
    }
    let dirs = instance_dirs(harness);
    assert!(dirs.is_empty(), "instance directory left: {dirs:?}");
}
