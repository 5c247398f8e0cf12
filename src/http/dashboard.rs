//! `GET /operator/dashboard`: the seed's operator JSON (kernels, triggers, snapshots,
//! watchdogs, trust, incidents, health), gathered from the shared services and the
//! state directory's files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use crate::incident::Incident;
use crate::kernel::{KernelState, StatusSnapshot};
use crate::state::StatePaths;
use crate::tree::System;

use super::health::HealthReport;
use super::incidents::{summarize, IncidentSummary};

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
/// else where the tree of DESIGN.md puts it (system kernels under `system`, `http`
/// under `root`, the rest under `kernels`).
pub fn supervisor_of(name: &str, actor_name: Option<String>) -> String {
    actor_name.unwrap_or_else(|| {
        if crate::tree::build::SYSTEM_KERNELS.contains(&name) {
            "system".to_owned()
        } else if name == "http" {
            "root".to_owned()
        } else {
            "kernels".to_owned()
        }
    })
}

/// Every kernel with its supervisor, sorted by name.
pub fn kernel_rows(system: &System) -> Vec<KernelRow> {
    system
        .registry
        .statuses()
        .iter()
        .map(|s| KernelRow {
            status: s.snapshot(),
            supervisor: Some(supervisor_of(
                &s.name,
                system
                    .registry
                    .get(&s.name)
                    .and_then(|e| e.supervisor.get_name()),
            )),
        })
        .collect()
}

/// The boot phase the kernels show: `starting` while any is starting, else `running`.
pub fn boot_phase(kernels: &[StatusSnapshot]) -> &'static str {
    if kernels.iter().any(|k| k.state == KernelState::Starting) {
        "starting"
    } else {
        "running"
    }
}

/// `healthy`, `degraded` (a critical kernel down), or `emergency`.
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

/// The trigger section: what the incidents show of the triggers.
pub fn triggers(system: &System, incidents: &[Incident], kernels: &[KernelRow]) -> Value {
    let mut issue_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for i in incidents {
        *issue_counts.entry(i.trigger.as_str()).or_insert(0) += i.occurrences.max(1);
    }
    let mut monitored: Vec<String> = kernels
        .iter()
        .filter(|k| k.supervisor.as_deref() == Some("triggers"))
        .map(|k| k.status.name.clone())
        .collect();
    for t in issue_counts.keys() {
        if !monitored.iter().any(|m| m == t) {
            monitored.push((*t).to_owned());
        }
    }
    monitored.sort();
    let running = kernels
        .iter()
        .filter(|k| k.supervisor.as_deref() == Some("triggers"))
        .any(|k| k.status.state.is_up());
    json!({
        "total_checks": Value::Null,
        "issues_detected": issue_counts.values().sum::<u64>(),
        "actions_executed": incidents.iter().map(|i| i.steps.len()).sum::<usize>(),
        "last_run": incidents.last().map(|i| i.detected_at.clone()),
        "running": running,
        "check_interval": system.config.heartbeat.check_interval.as_secs_f64(),
        "issue_counts": issue_counts,
        "triggers_monitored": monitored,
    })
}

/// The incidents section: summary, open ones, and the latest `recent`.
pub fn incidents_section(incidents: &[Incident], recent: usize) -> Value {
    let summary: IncidentSummary = summarize(incidents);
    let open: Vec<&Incident> = incidents.iter().filter(|i| i.status.is_open()).collect();
    let latest: Vec<&Incident> = incidents.iter().rev().take(recent).collect();
    json!({
        "summary": summary,
        "open": open,
        "recent": latest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
