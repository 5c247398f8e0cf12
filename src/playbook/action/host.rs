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

/// `wait`: sleeps for `duration`. With `until_clear: true` it ends as soon as the
/// condition that opened the incident (its trigger, component and failure mode) has
/// not held at the trigger's checks for `clear_for` (default: one check clear), after
/// at least `min`, at most `duration`; it reports whether the condition cleared.
struct Wait;

/// How often `wait` with `until_clear` looks at the condition.
const CLEAR_POLL: Duration = Duration::from_millis(50);

#[async_trait]
impl Action for Wait {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let d = args
            .duration("duration")?
            .ok_or_else(|| args.bad("duration", "given (such as \"5s\")"))?;
        if !args.bool("until_clear")?.unwrap_or(false) {
            tokio::time::sleep(d).await;
            return Ok(json!({ "waited_ms": d.as_millis() as u64 }));
        }
        // At least `min`, then until the incident's condition no longer holds, at most
        // `duration` in all.
        let started = tokio::time::Instant::now();
        let min = args.duration("min")?.unwrap_or(Duration::ZERO).min(d);
        tokio::time::sleep(min).await;
        let clear_for = args.duration("clear_for")?.unwrap_or(Duration::ZERO);
        let inc = &ctx.incident;
        let holds = || {
            ctx.system
                .conditions
                .holds(&inc.trigger, &inc.component, &inc.failure_mode)
        };
        let mut clear_since: Option<tokio::time::Instant> = None;
        let cleared = loop {
            let now = tokio::time::Instant::now();
            clear_since = match holds() {
                true => None,
                false => Some(clear_since.unwrap_or(now)),
            };
            if clear_since.is_some_and(|t| now - t >= clear_for) {
                break true;
            }
            if started.elapsed() >= d {
                break false;
            }
            tokio::time::sleep(CLEAR_POLL.min(d.saturating_sub(started.elapsed()))).await;
        };
        Ok(json!({ "waited_ms": started.elapsed().as_millis() as u64, "cleared": cleared }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["duration", "until_clear", "min", "clear_for"])?;
        args.typed("until_clear", Args::bool)?;
        args.typed("min", Args::duration)?;
        args.typed("clear_for", Args::duration)?;
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
/// `diagnostics/` (or the `dirs` named among them), never the live log files nor
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
        // Files open for appending: deleting one would send later writes nowhere.
        let keep = vec![
            paths.log_file(),
            paths.serve_output(),
            paths.watchdog_output(),
            paths.alerts_dir().join("latest_notification.json"),
        ];
        let r = tokio::task::spawn_blocking(move || cleanup(&roots, &keep, older_than))
            .await
            .map_err(|e| ActionError::failed(format!("cleanup task failed: {e}")))??;
        if r.1 == 0 {
            // Freeing nothing did nothing: the step is recorded skipped, not ok.
            let mut out = super::skipped(format!(
                "freed nothing: no file older than {} in {}",
                humantime::format_duration(older_than),
                dirs.join(", ")
            ));
            out["files_removed"] = json!(r.0);
            out["bytes_freed"] = json!(0);
            return Ok(out);
        }
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
