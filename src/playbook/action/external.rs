//! Actions that reach outside the process: `exec` (a command with the incident in its
//! environment), `webhook`, `notify` (an alert), and `escalate` with its mechanism,
//! which the dispatcher also uses when a playbook fails.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{post_json, Action, ActionContext, ActionError, ActionRegistry, Args};
use crate::alerts::Severity as AlertSeverity;
use crate::incident::Incident;
use crate::tree::System;

/// Bytes of stdout and stderr kept in a step's output.
const MAX_OUTPUT: usize = 4096;

pub(super) fn register(r: &mut ActionRegistry) {
    r.register("exec", Exec)
        .register("webhook", Webhook)
        .register("notify", Notify)
        .register("escalate", Escalate);
}

/// The environment a command run for an incident gets: `GRACE_INCIDENT_ID`,
/// `GRACE_COMPONENT`, `GRACE_SEVERITY`, `GRACE_TRIGGER`, `GRACE_FAILURE_MODE`,
/// `GRACE_INCIDENT_JSON`.
pub fn incident_env(incident: &Incident) -> Vec<(String, String)> {
    let sev = serde_json::to_value(incident.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        ("GRACE_INCIDENT_ID".into(), incident.incident_id.clone()),
        ("GRACE_COMPONENT".into(), incident.component.clone()),
        ("GRACE_SEVERITY".into(), sev),
        ("GRACE_TRIGGER".into(), incident.trigger.clone()),
        ("GRACE_FAILURE_MODE".into(), incident.failure_mode.clone()),
        (
            "GRACE_INCIDENT_JSON".into(),
            serde_json::to_string(incident).unwrap_or_default(),
        ),
    ]
}

/// Kills the command's whole process group if the run is dropped (timeout) before the
/// command exited.
struct GroupGuard {
    pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(MAX_OUTPUT);
    String::from_utf8_lossy(&bytes[start..])
        .trim_end()
        .to_owned()
}

/// Runs `argv` in its own process group with `env` added; a non-zero exit is an error.
/// Dropping the returned future kills the group.
async fn run_command(
    argv: &[String],
    env: &[(String, String)],
    cwd: Option<&str>,
) -> Result<Value, ActionError> {
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| ActionError::failed("empty command"))?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(rest)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let child = cmd.spawn().map_err(|source| ActionError::Io {
        context: format!("cannot run {prog:?} (is it installed and on PATH?)"),
        source,
    })?;
    // Dropped at the end of this function or with it (timeout): whatever is left in
    // the command's group, the leader or what it started, is killed.
    let _guard = GroupGuard {
        pgid: child.id().map(|p| p as i32),
    };
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| ActionError::Io {
            context: format!("waiting for {prog:?}"),
            source,
        })?;
    let result = json!({
        "command": argv,
        "exit_code": out.status.code(),
        "stdout": tail(&out.stdout),
        "stderr": tail(&out.stderr),
    });
    if out.status.success() {
        Ok(result)
    } else {
        Err(ActionError::failed(format!(
            "command {prog:?} exited with {}: {}",
            out.status,
            tail(&out.stderr)
        )))
    }
}

/// `exec`: runs `command` (a string, run with `sh -c`, or a list: program and
/// arguments) with the incident in its environment, in its own process group, killed
/// on timeout. Optional `cwd` and `env` (a map).
struct Exec;

fn argv(args: &Args) -> Result<Vec<String>, ActionError> {
    match args.get("command") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            Ok(vec!["sh".into(), "-c".into(), s.clone()])
        }
        Some(Value::Array(_)) => args
            .strings("command")?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| args.bad("command", "a non-empty list of strings")),
        _ => Err(args.bad("command", "a string or a list of strings")),
    }
}

#[async_trait]
impl Action for Exec {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let argv = argv(args)?;
        let mut env = incident_env(&ctx.incident);
        env.push(("GRACE_PLAYBOOK".into(), ctx.playbook.clone()));
        env.push((
            "GRACE_STATE_DIR".into(),
            ctx.system.paths.root().display().to_string(),
        ));
        if let Some(extra) = args.get("env").and_then(Value::as_object) {
            for (k, v) in extra {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                env.push((k.clone(), v));
            }
        }
        run_command(&argv, &env, args.str("cwd")?).await
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["command", "cwd", "env"])?;
        argv(args).map_err(|e| e.to_string())?;
        match args.get("env") {
            None | Some(Value::Object(_)) => Ok(()),
            Some(_) => Err("argument \"env\" must be a map of names to values".to_owned()),
        }
    }
}

/// `webhook`: POSTs the incident as JSON to `url`, bounded by `timeout` (default
/// `[playbooks] webhook_timeout`).
struct Webhook;

#[async_trait]
impl Action for Webhook {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let url = args.require_str("url")?;
        let timeout = args
            .duration("timeout")?
            .unwrap_or(ctx.config().webhook_timeout)
            .min(ctx.timeout);
        let body = serde_json::to_value(&*ctx.incident).unwrap_or(Value::Null);
        let (status, resp) = post_json(url, &body, timeout).await?;
        Ok(json!({ "url": url, "status": status, "response": resp }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["url", "timeout"])?;
        args.require_str("url").map_err(|e| e.to_string())?;
        args.typed("timeout", Args::duration)
    }
}

/// `notify`: raises an alert (`alerts/<level>_<time>_<n>.json` and
/// `latest_notification.json`, then the `[alerts]` notifiers) with `message` (default
/// the incident summary) at `level` (info, warning or critical; default info).
struct Notify;

fn alert_level(level: &str) -> Option<AlertSeverity> {
    Some(match level {
        "info" => AlertSeverity::Info,
        "warning" => AlertSeverity::Warning,
        "critical" => AlertSeverity::Critical,
        _ => return None,
    })
}

/// The alert payload of an incident.
fn alert_payload(ctx_playbook: Option<&str>, inc: &Incident) -> Value {
    json!({
        "incident_id": inc.incident_id,
        "component": inc.component,
        "trigger": inc.trigger,
        "failure_mode": inc.failure_mode,
        "severity_of_incident": inc.severity,
        "playbook": ctx_playbook,
    })
}

fn raise(
    system: &System,
    level: AlertSeverity,
    event: &str,
    summary: &str,
    payload: Value,
) -> Result<Value, ActionError> {
    let a = crate::alerts::raise(
        &system.paths,
        &system.config.alerts,
        level,
        event,
        summary,
        payload,
    )
    .map_err(|e| ActionError::failed(format!("cannot raise alert: {e}")))?;
    Ok(
        json!({ "alert": a.file.display().to_string(), "level": level.as_str(), "summary": summary }),
    )
}

#[async_trait]
impl Action for Notify {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let inc = &ctx.incident;
        let message = args.str("message")?.unwrap_or(&inc.summary).to_owned();
        let level = args.str("level")?.unwrap_or("info");
        let level =
            alert_level(level).ok_or_else(|| args.bad("level", "info, warning or critical"))?;
        tracing::info!(target: "grace::notify", incident = %inc.incident_id, component = %inc.component, level = level.as_str(), %message, "notification");
        raise(
            &ctx.system,
            level,
            "playbook.notify",
            &message,
            alert_payload(Some(&ctx.playbook), inc),
        )
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["message", "level"])?;
        match args.str("level").map_err(|e| e.to_string())? {
            Some(l) if alert_level(l).is_none() => {
                Err(format!("level {l:?} must be info, warning or critical"))
            }
            _ => Ok(()),
        }
    }
}

/// Hands an incident to a human or an external agent: raises a critical alert
/// (`incident.escalated`, which also reaches the `[alerts]` notifiers), runs
/// `[playbooks] escalate_command` (through `sh -c`, with the incident's environment and
/// `GRACE_ESCALATION_REASON`) and POSTs to `escalate_webhook`, whichever are set.
pub async fn escalate_incident(
    system: &System,
    incident: &Incident,
    reason: &str,
    timeout: Duration,
) -> Result<Value, ActionError> {
    let cfg = &system.config.playbooks;
    tracing::warn!(incident = %incident.incident_id, component = %incident.component, reason, "incident escalated");
    let summary = format!(
        "incident {} on {} escalated: {reason}",
        incident.incident_id, incident.component
    );
    let mut payload = alert_payload(incident.playbook.as_deref(), incident);
    payload["reason"] = json!(reason);
    let mut out = json!({ "reason": reason });
    out["alert"] = raise(
        system,
        AlertSeverity::Critical,
        "incident.escalated",
        &summary,
        payload,
    )?;
    if let Some(cmd) = &cfg.escalate_command {
        let mut env = incident_env(incident);
        env.push(("GRACE_ESCALATION_REASON".into(), reason.to_owned()));
        let argv = vec!["sh".to_owned(), "-c".to_owned(), cmd.clone()];
        let r = tokio::time::timeout(timeout, run_command(&argv, &env, None))
            .await
            .map_err(|_| {
                ActionError::failed(format!(
                    "escalate_command did not finish within {timeout:?}"
                ))
            })??;
        out["command"] = r;
    }
    if let Some(url) = &cfg.escalate_webhook {
        let body = json!({ "event": "incident.escalated", "reason": reason, "incident": incident });
        let (status, _) = post_json(url, &body, cfg.webhook_timeout.min(timeout)).await?;
        out["webhook_status"] = json!(status);
    }
    Ok(out)
}

/// `escalate`: escalates the incident (see [`escalate_incident`]) and marks it, so the
/// dispatcher closes it as `escalated`.
struct Escalate;

#[async_trait]
impl Action for Escalate {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let reason = match args.str("reason")? {
            Some(r) => r.to_owned(),
            None => format!("escalated by playbook {}", ctx.playbook),
        };
        let out = escalate_incident(&ctx.system, &ctx.incident, &reason, ctx.timeout).await?;
        ctx.mark_escalated(&reason);
        Ok(out)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["reason"])
    }
}
