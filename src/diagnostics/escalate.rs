//! Escalation channels: a command run with the report's path in its environment, and an
//! HTTP POST of the report JSON to a webhook.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::report::{ChannelOutcome, DiagnosticReport};

fn outcome(channel: &str, ok: bool, detail: String) -> ChannelOutcome {
    ChannelOutcome {
        channel: channel.to_owned(),
        ok,
        detail,
    }
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let start = s.len().saturating_sub(500);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s[start..].to_owned()
}

/// Runs `command` with `sh -c` in its own process group, with `GRACE_DIAGNOSTIC_REPORT`
/// (the report's path), `GRACE_COMPONENT`, `GRACE_ROOT_CAUSE` and `GRACE_INCIDENT_ID` in
/// its environment. Past `timeout` the whole group is killed.
pub async fn run_command(
    command: &str,
    report: &DiagnosticReport,
    path: &Path,
    timeout: Duration,
) -> ChannelOutcome {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("GRACE_DIAGNOSTIC_REPORT", path)
        .env("GRACE_COMPONENT", &report.component)
        .env("GRACE_ROOT_CAUSE", report.diagnosis.root_cause.as_str())
        .env(
            "GRACE_INCIDENT_ID",
            report.incident_id.as_deref().unwrap_or(""),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return outcome(
                "command",
                false,
                format!("cannot run sh -c {command:?}: {e}"),
            )
        }
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut detail = format!("{}", out.status);
            let (o, e) = (tail(&out.stdout), tail(&out.stderr));
            if !o.is_empty() {
                detail.push_str(&format!("; stdout: {o}"));
            }
            if !e.is_empty() {
                detail.push_str(&format!("; stderr: {e}"));
            }
            outcome("command", out.status.success(), detail)
        }
        Ok(Err(e)) => outcome("command", false, format!("waiting for the command: {e}")),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            outcome(
                "command",
                false,
                format!("killed after {timeout:?} (escalate_timeout)"),
            )
        }
    }
}

/// POSTs `body` (the report JSON) to `url` (`http://` only).
pub async fn post_webhook(url: &str, body: Vec<u8>, timeout: Duration) -> ChannelOutcome {
    let uri: hyper::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return outcome(
                "webhook",
                false,
                format!("bad escalate_webhook {url:?}: {e}"),
            )
        }
    };
    if uri.scheme_str() != Some("http") {
        return outcome(
            "webhook",
            false,
            format!("escalate_webhook {url:?}: only http:// URLs are supported"),
        );
    }
    let req = match hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "grace-diagnostics")
        .body(Full::new(Bytes::from(body)))
    {
        Ok(r) => r,
        Err(e) => return outcome("webhook", false, format!("building the request: {e}")),
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status();
            outcome("webhook", status.is_success(), format!("HTTP {status}"))
        }
        Ok(Err(e)) => outcome("webhook", false, format!("POST {url}: {e}")),
        Err(_) => outcome(
            "webhook",
            false,
            format!("POST {url}: no answer within {timeout:?} (escalate_timeout)"),
        ),
    }
}
