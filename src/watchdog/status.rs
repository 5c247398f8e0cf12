//! `grace status`: what runs for a state directory, gathered from its files, `/proc`,
//! sysinfo and serve's HTTP API (when serve is up).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::state::{lock_holder, KillSwitch, ServeInfo, StatePaths};

/// One process, as `grace status` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessStatus {
    /// Its pid (from the lock or the pid file).
    pub pid: u32,
    /// Whether it runs; a pid file naming a dead process is stale.
    pub alive: bool,
    /// Seconds since it started.
    pub uptime_s: Option<u64>,
    /// CPU use over a short sample, in percent of one core.
    pub cpu_percent: Option<f32>,
    /// Resident memory in bytes.
    pub memory_bytes: Option<u64>,
}

/// Serve's health and what its API tells.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServeHealth {
    /// `GET /health` status (200 while serve answers), `None` without an answer.
    pub http_status: Option<u16>,
    /// Where serve listens.
    pub addr: Option<String>,
    /// `healthy` or `degraded` (the verdict in `/health`'s body), or `unreachable`.
    pub state: String,
    /// Why serve is degraded, from `/health`'s body (kernels down, open incidents,
    /// emergency mode), or why it could not be asked.
    pub reasons: Vec<String>,
    /// Incidents still worked on (open, mitigating, verifying), from `/health`'s body.
    pub open_count: Option<u64>,
    /// Kernel counts from `/operator/dashboard`.
    pub kernels: Option<Value>,
    /// Open incidents from `/api/incidents?open=true`.
    pub open_incidents: Option<Vec<Value>>,
}

/// Everything `grace status` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The kill switch (`state.json`).
    pub kill_switch: KillSwitch,
    /// The watchdog, if one runs or its pid file is left.
    pub watchdog: Option<ProcessStatus>,
    /// Serve, if one runs or `serve.json` is left.
    pub serve: Option<ProcessStatus>,
    /// Serve's port from `serve.json`.
    pub port: Option<u16>,
    /// How serve contains its exec kernels' processes, from `serve.json`.
    pub containment: Option<String>,
    /// Health and API, when serve runs.
    pub health: Option<ServeHealth>,
}

fn pid_file(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Gathers the status of the state directory `paths`; `sample` is how long CPU use is
/// measured over (sysinfo needs two readings).
pub async fn gather(paths: &StatePaths, sample: Duration) -> StatusReport {
    let kill_switch = KillSwitch::read_last_known(paths);
    let wd_pid = lock_holder(&paths.watchdog_lock()).or_else(|| pid_file(&paths.watchdog_pid()));
    let info = ServeInfo::read(paths).ok().flatten();
    let serve_pid = lock_holder(&paths.serve_lock())
        .or(info.as_ref().map(|i| i.pid))
        .or(kill_switch.child.as_ref().map(|c| c.pid));
    let pids: Vec<u32> = wd_pid.iter().chain(serve_pid.iter()).copied().collect();
    let measured = measure(&pids, sample).await;
    let proc_status = |pid: u32| {
        let m = measured.iter().find(|m| m.pid == pid).cloned();
        m.unwrap_or(ProcessStatus {
            pid,
            alive: false,
            uptime_s: None,
            cpu_percent: None,
            memory_bytes: None,
        })
    };
    let serve = serve_pid.map(proc_status);
    let health = match (&serve, &info) {
        (Some(s), Some(i)) if s.alive && i.pid == s.pid && i.port != 0 => {
            Some(query(i.health_addr()).await)
        }
        _ => None,
    };
    StatusReport {
        state_dir: std::fs::canonicalize(paths.root())
            .unwrap_or_else(|_| paths.root().to_path_buf()),
        kill_switch,
        watchdog: wd_pid.map(proc_status),
        serve,
        containment: info.as_ref().and_then(|i| i.containment.clone()),
        port: info.map(|i| i.port),
        health,
    }
}

async fn measure(pids: &[u32], sample: Duration) -> Vec<ProcessStatus> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let list: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
    let mut sys = System::new();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&list), true, kind);
    tokio::time::sleep(sample.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)).await;
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&list), true, kind);
    pids.iter()
        .map(|pid| match sys.process(Pid::from_u32(*pid)) {
            Some(p) if super::process::alive(*pid) => ProcessStatus {
                pid: *pid,
                alive: true,
                uptime_s: Some(p.run_time()),
                cpu_percent: Some(p.cpu_usage()),
                memory_bytes: Some(p.memory()),
            },
            _ => ProcessStatus {
                pid: *pid,
                alive: false,
                uptime_s: None,
                cpu_percent: None,
                memory_bytes: None,
            },
        })
        .collect()
}

async fn query(addr: SocketAddr) -> ServeHealth {
    use crate::alerts::http::get;
    let t = Duration::from_secs(2);
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    let health = get(addr, "/health", t).await.ok();
    let http_status = health.as_ref().map(|a| a.status);
    let body = health.as_ref().and_then(|a| json(&a.body));
    let (state, reasons, open_count) = verdict(http_status, body.as_ref());
    let mut kernels = None;
    let mut open_incidents = None;
    if http_status.is_some() {
        if let Ok(a) = get(addr, "/operator/dashboard", t).await {
            kernels = json(&a.body).and_then(|v| {
                let k = v.get("kernels")?;
                Some(serde_json::json!({
                    "total": k.get("total"), "running": k.get("running"),
                    "failed": k.get("failed"), "degraded": k.get("degraded"),
                }))
            });
        }
        if let Ok(a) = get(addr, "/api/incidents?open=true", t).await {
            open_incidents = json(&a.body).and_then(|v| match v {
                Value::Array(list) => Some(list),
                Value::Object(mut m) => match m.remove("incidents") {
                    Some(Value::Array(list)) => Some(list),
                    _ => None,
                },
                _ => None,
            });
        }
    }
    ServeHealth {
        http_status,
        addr: Some(addr.to_string()),
        state,
        reasons,
        open_count,
        kernels,
        open_incidents,
    }
}

/// The verdict of serve's `/health` answer: its body's `status` and `reasons`, and its
/// count of incidents still worked on. An answer without a readable verdict is
/// `degraded` with the HTTP status as reason; no answer is `unreachable`.
pub fn verdict(
    http_status: Option<u16>,
    body: Option<&Value>,
) -> (String, Vec<String>, Option<u64>) {
    let Some(code) = http_status else {
        return (
            "unreachable".to_owned(),
            vec!["GET /health did not answer".to_owned()],
            None,
        );
    };
    let status = body.and_then(|b| b.get("status")).and_then(Value::as_str);
    let reasons: Vec<String> = body
        .and_then(|b| b.get("reasons"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let open = body
        .and_then(|b| b.get("incidents"))
        .and_then(|i| i.get("total"))
        .and_then(Value::as_u64);
    match status {
        Some("healthy") if code == 200 => ("healthy".to_owned(), reasons, open),
        Some("degraded") => ("degraded".to_owned(), reasons, open),
        _ => (
            "degraded".to_owned(),
            vec![format!("GET /health answered {code} without a verdict")],
            open,
        ),
    }
}

impl StatusReport {
    /// The exit status of `grace status`, as LSB init scripts (and `systemctl status`)
    /// use them: 0 serve runs and is healthy; 1 serve runs but is degraded or does not
    /// answer, or it is dead while its pid is left behind (a crash), or the watchdog runs
    /// without it while the kill switch is clear (it is being brought back); 3 serve is
    /// not running.
    pub fn exit_code(&self) -> i32 {
        match &self.serve {
            Some(s) if s.alive => match &self.health {
                Some(h) if h.state == "healthy" => 0,
                _ => 1,
            },
            Some(_) => 1,
            None => {
                let watchdog_up = self.watchdog.as_ref().is_some_and(|w| w.alive);
                if watchdog_up && !self.kill_switch.manual_shutdown {
                    1
                } else {
                    3
                }
            }
        }
    }
}

/// The report as text for a terminal.
pub fn render(r: &StatusReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let proc_line = |p: &Option<ProcessStatus>| match p {
        None => "not running".to_owned(),
        Some(p) if !p.alive => format!("not running (stale pid {})", p.pid),
        Some(p) => format!(
            "pid {}, up {}, cpu {:.1}%, mem {:.1} MiB",
            p.pid,
            humantime::format_duration(Duration::from_secs(p.uptime_s.unwrap_or(0))),
            p.cpu_percent.unwrap_or(0.0),
            p.memory_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0)
        ),
    };
    let ks = &r.kill_switch;
    let _ = writeln!(s, "state dir:    {}", r.state_dir.display());
    if let Some(e) = &ks.unreadable {
        let _ = writeln!(s, "kill switch:  unreadable ({e}); as last known:");
    }
    let _ = writeln!(
        s,
        "kill switch:  {} (changed by {}, {})",
        if ks.manual_shutdown {
            "SET: serve stays stopped"
        } else {
            "clear"
        },
        ks.switch_changed_by.as_deref().unwrap_or("-"),
        ks.switch_changed_at.as_deref().unwrap_or("never")
    );
    let _ = writeln!(s, "watchdog:     {}", proc_line(&r.watchdog));
    let _ = writeln!(s, "serve:        {}", proc_line(&r.serve));
    if let Some(c) = &r.containment {
        let _ = writeln!(s, "containment:  {c}");
    }
    if let Some(h) = &r.health {
        let _ = writeln!(
            s,
            "health:       {} ({}){}",
            h.state,
            h.addr.as_deref().unwrap_or("-"),
            if h.state == "healthy" || h.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", h.reasons.join("; "))
            }
        );
        if let Some(k) = &h.kernels {
            let n = |f: &str| k.get(f).and_then(Value::as_u64).unwrap_or(0);
            let _ = writeln!(
                s,
                "kernels:      {} total, {} running, {} failed, {} degraded",
                n("total"),
                n("running"),
                n("failed"),
                n("degraded")
            );
        }
        if let Some(list) = &h.open_incidents {
            let n = h
                .open_count
                .unwrap_or(list.len() as u64)
                .max(list.len() as u64);
            let _ = writeln!(s, "incidents:    {n} open");
            for i in list.iter().take(10) {
                let f = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
                let _ = writeln!(
                    s,
                    "  {} {} {} {} ({})",
                    f("incident_id"),
                    f("severity"),
                    f("component"),
                    f("failure_mode"),
                    f("status")
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "restarts:     {} (last exit: {})",
        ks.restart_count,
        ks.last_exit_reason.as_deref().unwrap_or("-")
    );
    s
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
