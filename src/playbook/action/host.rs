//! Actions on the serve process and its state directory: restart serve, emergency
//! mode, wait, resource cleanup, and a diagnostic task for `coding_agent`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::kernel::Request;

pub(super) fn register(r: &mut ActionRegistry) {
    r.register("restart_service", RestartService)
        .register("emergency_mode", EmergencyMode)
        .register("wait", Wait)
        .register("resource_cleanup", ResourceCleanup)
        .register("create_diagnostic_task", CreateDiagnosticTask);
}

/// `restart_service`: asks the watchdog to replace this serve process (serve shuts
/// down gracefully and exits with the restart-requested status).
struct RestartService;

#[async_trait]
impl Action for RestartService {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let reason = match args.str("reason")? {
            Some(r) => r.to_owned(),
            None => format!(
                "playbook {} for incident {}",
                ctx.playbook, ctx.incident.incident_id
            ),
        };
        ctx.system.request_restart(&reason);
        Ok(json!({ "restart_requested": true, "reason": reason }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["reason"])
    }
}

/// `emergency_mode`: `on: true` or `on: false`.
struct EmergencyMode;

#[async_trait]
impl Action for EmergencyMode {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let on = args
            .bool("on")?
            .ok_or_else(|| args.bad("on", "given (true or false)"))?;
        let was = ctx.system.set_emergency(on);
        tracing::warn!(on, was, incident = %ctx.incident.incident_id, "emergency mode");
        Ok(json!({ "emergency": on, "was": was }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["on"])?;
        match args.bool("on") {
            Ok(Some(_)) => Ok(()),
            _ => Err("action emergency_mode needs `on: true` or `on: false`".to_owned()),
        }
    }
}

/// `wait`: sleeps for `duration`.
struct Wait;

/// How often `wait` with `until_cpu_below` reads the host's CPU use.
const CPU_READING: Duration = Duration::from_secs(1);

/// Where a calm spell stands after one CPU reading at `now`: when it began, or `None`
/// when the reading is not below the limit.
fn calm_since(
    since: Option<tokio::time::Instant>,
    cpu: f64,
    below: f64,
    now: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    (cpu < below).then(|| since.unwrap_or(now))
}

#[async_trait]
impl Action for Wait {
    async fn run(&self, _ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let d = args
            .duration("duration")?
            .ok_or_else(|| args.bad("duration", "given (such as \"5s\")"))?;
        let Some(below) = args.f64("until_cpu_below")? else {
            tokio::time::sleep(d).await;
            return Ok(json!({ "waited_ms": d.as_millis() as u64 }));
        };
        // Shed load comes back as soon as the pressure is gone, not only after the
        // longest hold: holding it longer than needed only makes things worse.
        let calm_for = args.duration("calm_for")?.unwrap_or(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let deadline = start + d;
        let mut sys = sysinfo::System::new();
        sys.refresh_cpu_usage();
        let (mut since, mut last) = (None, None);
        let ended = loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break "duration";
            }
            tokio::time::sleep(CPU_READING.min(deadline - now)).await;
            sys.refresh_cpu_usage();
            let cpu = f64::from(sys.global_cpu_usage());
            let now = tokio::time::Instant::now();
            last = Some(cpu);
            since = calm_since(since, cpu, below, now);
            if since.is_some_and(|s| now - s >= calm_for) {
                break "calm";
            }
        };
        Ok(json!({
            "waited_ms": start.elapsed().as_millis() as u64,
            "ended": ended,
            "cpu_percent": last,
            "until_cpu_below": below,
        }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["duration", "until_cpu_below", "calm_for"])?;
        match args.f64("until_cpu_below") {
            Ok(Some(p)) if !(p > 0.0 && p <= 100.0) => {
                return Err(format!(
                    "action wait: until_cpu_below {p} is not a percentage between 0 and 100"
                ))
            }
            Err(e) => return Err(e.to_string()),
            _ => {}
        }
        if let Err(e) = args.duration("calm_for") {
            return Err(e.to_string());
        }
        match args.duration("duration") {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("action wait needs `duration`, such as \"5s\"".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The state subdirectories `resource_cleanup` may clean.
const CLEANABLE: [&str; 3] = ["logs", "alerts", "diagnostics"];

/// `resource_cleanup`: removes files older than `older_than` (default `[playbooks]
/// cleanup_retention`) from the state directory's `logs/`, `alerts/` and
/// `diagnostics/` (or the `dirs` named among them), never the live log file nor
/// `alerts/latest_notification.json`; reports the bytes freed.
struct ResourceCleanup;

#[async_trait]
impl Action for ResourceCleanup {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let older_than = args
            .duration("older_than")?
            .unwrap_or(ctx.config().cleanup_retention);
        let dirs = args
            .strings("dirs")?
            .unwrap_or_else(|| CLEANABLE.iter().map(|s| (*s).to_owned()).collect());
        if let Some(bad) = dirs.iter().find(|d| !CLEANABLE.contains(&d.as_str())) {
            return Err(args.bad("dirs", &format!("among {CLEANABLE:?}, not {bad:?}")));
        }
        let paths = &ctx.system.paths;
        let roots: Vec<PathBuf> = dirs.iter().map(|d| paths.root().join(d)).collect();
        let keep = vec![
            paths.log_file(),
            paths.alerts_dir().join("latest_notification.json"),
        ];
        let r = tokio::task::spawn_blocking(move || cleanup(&roots, &keep, older_than))
            .await
            .map_err(|e| ActionError::failed(format!("cleanup task failed: {e}")))??;
        Ok(json!({
            "files_removed": r.0, "bytes_freed": r.1, "dirs": dirs,
            "older_than": humantime::format_duration(older_than).to_string(),
        }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["older_than", "dirs"])?;
        args.typed("older_than", Args::duration)?;
        match args.strings("dirs") {
            Ok(Some(d)) => match d.iter().find(|d| !CLEANABLE.contains(&d.as_str())) {
                Some(bad) => Err(format!("dirs: {bad:?} is not one of {CLEANABLE:?}")),
                None => Ok(()),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether a file of age `age` is removed (pure).
pub(crate) fn expired(age: Duration, retention: Duration) -> bool {
    age > retention
}

/// Removes expired regular files under `roots` (recursively), except `keep`; returns
/// (files removed, bytes freed).
fn cleanup(
    roots: &[PathBuf],
    keep: &[PathBuf],
    retention: Duration,
) -> Result<(u64, u64), ActionError> {
    let now = SystemTime::now();
    let mut files = 0;
    let mut bytes = 0;
    let mut stack: Vec<PathBuf> = roots.iter().filter(|p| p.is_dir()).cloned().collect();
    while let Some(dir) = stack.pop() {
        let io = |source| ActionError::Io {
            context: format!("resource_cleanup: reading {}", dir.display()),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if !meta.is_file() || keep.iter().any(|k| k == &path) {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if expired(age, retention) && remove(&path) {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

fn remove(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "resource_cleanup: cannot remove");
            false
        }
    }
}

/// `create_diagnostic_task`: asks the `coding_agent` kernel (or `agent`) to
/// `diagnose` the incident's component (or `kernel`), with the incident's error
/// message and optional `dependencies`, and returns its report.
struct CreateDiagnosticTask;

/// The error message of an incident: `error` or `reason` in its details, else its
/// summary.
fn incident_error(inc: &crate::incident::Incident) -> String {
    ["error", "reason", "panic"]
        .iter()
        .find_map(|k| inc.details.get(k).and_then(Value::as_str))
        .unwrap_or(&inc.summary)
        .to_owned()
}

#[async_trait]
impl Action for CreateDiagnosticTask {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let inc = &ctx.incident;
        let component = args.str("kernel")?.unwrap_or(&inc.component).to_owned();
        let agent = args.str("agent")?.unwrap_or("coding_agent").to_owned();
        let req = Request::new(
            "diagnose",
            json!({
                "component": component,
                "incident_id": inc.incident_id,
                "error": incident_error(inc),
                "dependencies": args.strings("dependencies")?.unwrap_or_default(),
            }),
        );
        let report = ctx.system.registry.call(&agent, req, ctx.timeout).await?;
        Ok(json!({ "agent": agent, "component": component, "report": report }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["kernel", "agent", "dependencies"])?;
        args.typed("dependencies", Args::strings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calm_spell_starts_at_the_first_calm_reading_and_breaks_on_a_busy_one() {
        let t0 = tokio::time::Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(calm_since(None, 40.0, 70.0, t0), Some(t0));
        assert_eq!(calm_since(Some(t0), 50.0, 70.0, t1), Some(t0));
        assert_eq!(calm_since(Some(t0), 90.0, 70.0, t1), None);
        assert_eq!(calm_since(None, 70.0, 70.0, t1), None);
    }

    #[test]
    fn wait_checks_its_cpu_limit() {
        let args = |v: Value| match v {
            Value::Object(m) => Args::new("wait", m),
            _ => Args::new("wait", serde_json::Map::new()),
        };
        let ok = args(json!({ "duration": "2m", "until_cpu_below": 70, "calm_for": "5s" }));
        assert!(Wait.validate(&ok).is_ok());
        for bad in [0.0, 150.0] {
            let e = Wait
                .validate(&args(json!({ "duration": "2m", "until_cpu_below": bad })))
                .expect_err("out of range");
            assert!(e.contains("percentage"), "{e}");
        }
        assert!(Wait
            .validate(&args(json!({ "duration": "2m", "calm_for": "soon" })))
            .is_err());
    }

    #[test]
    fn cleanup_removes_only_expired_files_and_keeps_the_protected_ones() {
        let d = tempfile::tempdir().expect("tempdir");
        let logs = d.path().join("logs");
        std::fs::create_dir_all(logs.join("old")).expect("mkdir");
        let old = logs.join("old").join("a.jsonl");
        let live = logs.join("grace.jsonl");
        std::fs::write(&old, vec![0u8; 100]).expect("write");
        std::fs::write(&live, vec![0u8; 50]).expect("write");
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for p in [&old, &live] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(two_hours_ago))
                .expect("set mtime");
        }
        let fresh = logs.join("fresh.jsonl");
        std::fs::write(&fresh, b"x").expect("write");
        let hour = Duration::from_secs(3600);
        let (files, bytes) = cleanup(
            std::slice::from_ref(&logs),
            std::slice::from_ref(&live),
            hour,
        )
        .expect("cleanup");
        assert_eq!((files, bytes), (1, 100));
        assert!(!old.exists());
        assert!(live.exists());
        assert!(fresh.exists(), "a fresh file is kept");
        assert!(expired(Duration::from_secs(2), Duration::from_secs(1)));
        assert!(!expired(Duration::from_secs(1), Duration::from_secs(1)));
    }
}
