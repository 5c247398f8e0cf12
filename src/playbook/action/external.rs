//! Actions that reach outside the process: `exec` (a command with the incident in its
//! environment), `webhook`, `notify`, and `escalate` with its mechanism, which the
//! dispatcher also uses when a playbook fails.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{post_json, Action, ActionContext, ActionError, ActionRegistry, Args};
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

/// `notify`: a structured log line for the operator (`message`, default the incident
/// summary; `level`: info, warning or critical) and, when `[playbooks]
/// notify_webhook` is set, a POST of the notification.
struct Notify;

#[async_trait]
impl Action for Notify {
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError> {
        let inc = &ctx.incident;
        let message = args.str("message")?.unwrap_or(&inc.summary).to_owned();
        let level = args.str("level")?.unwrap_or("info").to_owned();
        let note = json!({
            "event_type": "playbook.notify",
            "timestamp": crate::time::rfc3339(crate::time::now()),
            "level": level,
            "message": message,
            "incident_id": inc.incident_id,
            "component": inc.component,
            "playbook": ctx.playbook,
        });
        match level.as_str() {
            "critical" => {
                tracing::error!(target: "grace::notify", incident = %inc.incident_id, component = %inc.component, %message, "notification")
            }
            "warning" => {
                tracing::warn!(target: "grace::notify", incident = %inc.incident_id, component = %inc.component, %message, "notification")
            }
            _ => {
                tracing::info!(target: "grace::notify", incident = %inc.incident_id, component = %inc.component, %message, "notification")
            }
        }
        let webhook = match &ctx.config().notify_webhook {
            Some(url) => {
                let t = ctx.config().webhook_timeout.min(ctx.timeout);
                Some(post_json(url, &note, t).await?.0)
            }
            None => None,
        };
        Ok(json!({ "notification": note, "webhook_status": webhook }))
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        args.only(&["message", "level"])?;
        match args.str("level").map_err(|e| e.to_string())? {
            None | Some("info" | "warning" | "critical") => Ok(()),
            Some(l) => Err(format!("level {l:?} must be info, warning or critical")),
        }
    }
}

/// Hands an incident to a human or an external agent: runs `[playbooks]
/// escalate_command` (through `sh -c`, with the incident's environment and
/// `GRACE_ESCALATION_REASON`) and POSTs to `escalate_webhook`, whichever are set. With
/// neither, the escalation is the logged warning and the `incident.escalated` event.
pub async fn escalate_incident(
    system: &System,
    incident: &Incident,
    reason: &str,
    timeout: Duration,
) -> Result<Value, ActionError> {
    let cfg = &system.config.playbooks;
    tracing::warn!(incident = %incident.incident_id, component = %incident.component, reason, "incident escalated");
    let mut out = json!({ "reason": reason });
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
