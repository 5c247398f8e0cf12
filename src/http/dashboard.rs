//! `GET /operator/dashboard`: the seed's operator JSON (kernels, triggers, snapshots,
//! watchdogs, trust, incidents, health), gathered from the shared services and the
//! state directory's files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::incident::Incident;
use crate::kernel::{KernelState, KernelStatus, StatusSnapshot};
use crate::state::StatePaths;
use crate::tree::System;

use super::health::HealthReport;

/// A kernel with the supervisor it runs under.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelRow {
    /// Its status.
    #[serde(flatten)]
    pub status: StatusSnapshot,
    /// The name of its supervisor, when known.
    pub supervisor: Option<String>,
}

/// The supervisor a kernel runs under: its supervisor actor's name when it has one,
/// else where the tree of DESIGN.md puts it (system kernels under `system`, trigger
/// kernels under `triggers`, `http` under `root`, the rest under `kernels`).
pub fn supervisor_of(name: &str, actor_name: Option<String>) -> String {
    actor_name.unwrap_or_else(|| {
        if crate::tree::build::SYSTEM_KERNELS.contains(&name) {
            "system".to_owned()
        } else if name.starts_with(crate::trigger::KERNEL_PREFIX) {
            crate::trigger::SUPERVISOR_NAME.to_owned()
        } else if name == "http" {
            "root".to_owned()
        } else {
            "kernels".to_owned()
        }
    })
}

fn row(system: &System, s: &KernelStatus) -> KernelRow {
    KernelRow {
        status: s.snapshot(),
        supervisor: Some(supervisor_of(
            &s.name,
            system
                .registry
                .get(&s.name)
                .and_then(|e| e.supervisor.get_name()),
        )),
    }
}

/// Every kernel with its supervisor, sorted by name.
pub fn kernel_rows(system: &System) -> Vec<KernelRow> {
    system
        .registry
        .statuses()
        .iter()
        .map(|s| row(system, s))
        .collect()
}

/// Which of `kernels` (sorted by name) a bounded list shows: every kernel that is not
/// running or is critical first, then the others in name order, up to `max`; the
/// result stays in name order.
pub fn pick_for_list(kernels: &[Arc<KernelStatus>], max: usize) -> Vec<usize> {
    if kernels.len() <= max {
        return (0..kernels.len()).collect();
    }
    let notable = |k: &Arc<KernelStatus>| k.critical || k.state() != KernelState::Running;
    let mut picked: Vec<usize> = (0..kernels.len())
        .filter(|i| notable(&kernels[*i]))
        .take(max)
        .collect();
    let room = max - picked.len();
    picked.extend(
        (0..kernels.len())
            .filter(|i| !notable(&kernels[*i]))
            .take(room),
    );
    picked.sort_unstable();
    picked
}

/// At most `max` kernels with their supervisors (see [`pick_for_list`]), and the total.
pub fn kernel_rows_bounded(system: &System, max: usize) -> (Vec<KernelRow>, usize) {
    let all = system.registry.statuses();
    let rows = pick_for_list(&all, max)
        .into_iter()
        .map(|i| row(system, &all[i]))
        .collect();
    (rows, all.len())
}

/// The boot phase the kernels show: `starting` while any is starting, else `running`.
pub fn boot_phase(kernels: &[StatusSnapshot]) -> &'static str {
    if kernels.iter().any(|k| k.state == KernelState::Starting) {
        "starting"
    } else {
        "running"
    }
}

/// The header's verdict: `emergency` when emergency mode is on, else `/health`'s
/// verdict: `degraded` (a kernel down, an incident open) or `healthy`.
pub fn system_state(health: &HealthReport, emergency: bool) -> &'static str {
    if emergency {
        "emergency"
    } else if health.healthy() {
        "healthy"
    } else {
        "degraded"
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The kill switch (`state.json`), the watchdog's pid and liveness, and `serve.json`.
pub fn watchdogs(paths: &StatePaths) -> Value {
    let state = read_json(&paths.state_json());
    let watchdog_pid = std::fs::read_to_string(paths.watchdog_pid())
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    json!({
        "kill_switch": {
            "manual_shutdown": state.as_ref().and_then(|s| s.get("manual_shutdown")).and_then(Value::as_bool).unwrap_or(false),
            "state": state,
        },
        "watchdog": {
            "pid": watchdog_pid,
            "running": watchdog_pid.is_some_and(pid_alive),
        },
        "serve": read_json(&paths.serve_json()),
    })
}

/// Snapshot files by kind (`snapshots/<kind>/`), not counting `latest` copies and
/// manifests, with the newest file's modification time.
pub fn snapshots(paths: &StatePaths) -> Value {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut newest: Option<std::time::SystemTime> = None;
    let dir = paths.snapshots_dir();
    if let Ok(kinds) = std::fs::read_dir(&dir) {
        for kind in kinds.flatten().filter(|k| k.path().is_dir()) {
            let name = kind.file_name().to_string_lossy().into_owned();
            let files = std::fs::read_dir(kind.path())
                .into_iter()
                .flatten()
                .flatten();
            let mut n = 0;
            for f in files {
                let fname = f.file_name().to_string_lossy().into_owned();
                if fname.starts_with("latest")
                    || fname.contains("manifest")
                    || fname.starts_with('.')
                {
                    continue;
                }
                n += 1;
                if let Ok(m) = f.metadata().and_then(|m| m.modified()) {
                    newest = Some(newest.map_or(m, |x| x.max(m)));
                }
            }
            by_kind.insert(name, n);
        }
    }
    json!({
        "total_snapshots": by_kind.values().sum::<usize>(),
        "by_kind": by_kind,
        "last_snapshot": newest.map(|t| crate::time::rfc3339(t.into())),
        "directory": dir,
    })
}

/// One trigger kernel as the dashboard sees it: its status and its own counters
/// (`Control::Stats`: checks, published, flapping), when it answered.
pub struct TriggerView {
    /// The kernel.
    pub status: Arc<KernelStatus>,
    /// Its stats, if it answered in time.
    pub stats: Option<Value>,
}

/// The trigger section of the seed's dashboard: checks and detections summed over the
/// trigger kernels, the last check (the freshest trigger heartbeat: a trigger beats when
/// a check completes), issue counts by trigger from the incidents, and the playbook
/// actions executed.
pub fn triggers(views: &[TriggerView], incidents: &[Incident], actions_executed: u64) -> Value {
    let sum = |key: &str| -> u64 {
        views
            .iter()
            .filter_map(|v| v.stats.as_ref()?.get(key)?.as_u64())
            .sum()
    };
    let mut issue_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for i in incidents {
        *issue_counts.entry(i.trigger.as_str()).or_insert(0) += i.occurrences.max(1);
    }
    let up: Vec<&TriggerView> = views.iter().filter(|v| v.status.state().is_up()).collect();
    let last_run = up
        .iter()
        .map(|v| v.status.heartbeat_age_ms())
        .min()
        .map(|age| {
            crate::time::rfc3339(crate::time::now() - chrono::Duration::milliseconds(age as i64))
        });
    let check_interval = views
        .iter()
        .map(|v| v.status.heartbeat_interval_ms())
        .min()
        .map(|ms| ms as f64 / 1000.0);
    let flapping: Vec<Value> = views
        .iter()
        .filter_map(|v| v.stats.as_ref()?.get("flapping").cloned())
        .filter(|f| f.as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    let monitored: Vec<String> = views
        .iter()
        .map(|v| trigger_name(&v.status.name).to_owned())
        .collect();
    json!({
        "total_checks": sum("checks"),
        "issues_detected": sum("published"),
        "actions_executed": actions_executed,
        "last_run": last_run,
        "running": !up.is_empty(),
        "running_count": up.len(),
        "check_interval": check_interval,
        "issue_counts": issue_counts,
        "triggers_monitored": monitored,
        "flapping": flapping,
    })
}

/// A trigger's name without the kernel prefix (`trigger.heartbeat_failure` →
/// `heartbeat_failure`).
pub fn trigger_name(kernel: &str) -> &str {
    kernel
        .strip_prefix(crate::trigger::KERNEL_PREFIX)
        .unwrap_or(kernel)
}

/// The incidents section: the store's summary (every incident of the file), the open
/// ones and the latest `recent`.
pub fn incidents_section(system: &System, recent: usize) -> Value {
    json!({
        "summary": system.incidents.summary(),
        "open": system.incidents.open_incidents(),
        "recent": system.incidents.recent(recent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lists_keep_the_notable_kernels() {
        use crate::kernel::KernelSpec;
        let ks: Vec<Arc<KernelStatus>> = (0..10)
            .map(|i| {
                let spec = KernelSpec::new(
                    format!("k{i}"),
                    Arc::new(|| -> Box<dyn crate::kernel::Kernel> { unreachable!() }),
                );
                let st = Arc::new(KernelStatus::new(&spec));
                st.mark_running();
                st
            })
            .collect();
        ks[7].set_state(KernelState::Failed);
        assert_eq!(pick_for_list(&ks, 20).len(), 10);
        assert_eq!(pick_for_list(&ks, 3), vec![0, 1, 7]);
    }

    #[test]
    fn snapshot_counts_skip_latest_and_manifests() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = StatePaths::new(d.path());
        p.create().expect("create");
        let m = p.snapshots_dir().join("models");
        std::fs::create_dir_all(&m).expect("mkdir");
        for f in [
            "w_20250101_000000.pt",
            "w_20250101_010000.pt",
            "latest.pt",
            "manifest.json",
        ] {
            std::fs::write(m.join(f), b"x").expect("write");
        }
        let v = snapshots(&p);
        assert_eq!(v["total_snapshots"], 2);
        assert_eq!(v["by_kind"]["models"], 2);
        assert!(v["last_snapshot"].is_string());
    }

    #[test]
    fn watchdogs_read_the_kill_switch() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = StatePaths::new(d.path());
        assert_eq!(watchdogs(&p)["kill_switch"]["manual_shutdown"], false);
        std::fs::write(
            p.state_json(),
            br#"{"manual_shutdown": true, "restart_count": 2}"#,
        )
        .expect("write");
        std::fs::write(p.watchdog_pid(), std::process::id().to_string()).expect("write");
        let v = watchdogs(&p);
        assert_eq!(v["kill_switch"]["manual_shutdown"], true);
        assert_eq!(v["kill_switch"]["state"]["restart_count"], 2);
        assert_eq!(v["watchdog"]["running"], true);
    }
}
