//! `exec`: a user command run at every check (`/bin/sh -c`, in its own process group);
//! a non-zero exit or a timeout is an incident with the configured playbook.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::kernel::KernelContext;
use crate::trigger::config::ExecTriggerConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// Bytes of output kept (the end of each stream).
const TAIL: usize = 2048;

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Whether it was killed for running past its timeout.
    pub timed_out: bool,
    /// Why it could not be run at all.
    pub spawn_error: Option<String>,
    /// The end of its standard output.
    pub stdout: String,
    /// The end of its standard error.
    pub stderr: String,
    /// How long it ran.
    pub duration: Duration,
}

impl RunOutcome {
    /// Whether the check passed (exit status 0).
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out && self.spawn_error.is_none()
    }

    fn describe(&self) -> String {
        if let Some(e) = &self.spawn_error {
            format!("could not run: {e}")
        } else if self.timed_out {
            format!("timed out after {:.1} s", self.duration.as_secs_f64())
        } else if let Some(s) = self.signal {
            format!("killed by signal {s}")
        } else {
            format!("exit status {}", self.code.unwrap_or(-1))
        }
    }
}

async fn tail(mut r: impl AsyncRead + Unpin) -> String {
    let mut keep: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        keep.extend_from_slice(&buf[..n]);
        if keep.len() > TAIL {
            keep.drain(..keep.len() - TAIL);
        }
    }
    String::from_utf8_lossy(&keep).into_owned()
}

fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // The child leads its own group (process_group(0)), so its pid names the group.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// Runs `command` with `sh -c` in its own process group, killing the group after
/// `timeout` and after it exits (no process it started outlives the check).
pub async fn run(command: &str, timeout: Duration, env: &[(&str, String)]) -> RunOutcome {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut out = RunOutcome {
        code: None,
        signal: None,
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: String::new(),
        duration: Duration::ZERO,
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.spawn_error = Some(e.to_string());
            return out;
        }
    };
    let pid = child.id();
    let so = child.stdout.take().map(|s| tokio::spawn(tail(s)));
    let se = child.stderr.take().map(|s| tokio::spawn(tail(s)));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            out.code = status.code();
            out.signal = status.signal();
        }
        Ok(Err(e)) => out.spawn_error = Some(e.to_string()),
        Err(_) => {
            out.timed_out = true;
            kill_group(pid);
            let _ = child.wait().await;
        }
    }
    kill_group(pid);
    if let Some(h) = so {
        out.stdout = h.await.unwrap_or_default();
    }
    if let Some(h) = se {
        out.stderr = h.await.unwrap_or_default();
    }
    out.duration = started.elapsed();
    out
}

/// `exec`: one configured command.
pub struct ExecTrigger {
    cfg: ExecTriggerConfig,
    last: Option<RunOutcome>,
    runs: u64,
    failures: u64,
}

impl ExecTrigger {
    /// The trigger with its settings.
    pub fn new(cfg: ExecTriggerConfig) -> ExecTrigger {
        ExecTrigger {
            cfg,
            last: None,
            runs: 0,
            failures: 0,
        }
    }
}

#[async_trait]
impl Trigger for ExecTrigger {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let env = [
            ("GRACE_TRIGGER", self.cfg.name.clone()),
            (
                "GRACE_STATE_DIR",
                ctx.system.paths.root().display().to_string(),
            ),
        ];
        let r = run(&self.cfg.command, self.cfg.timeout, &env).await;
        self.runs += 1;
        let mut found = Vec::new();
        if !r.ok() {
            self.failures += 1;
            let component = self.cfg.component.as_deref().unwrap_or(&self.cfg.name);
            found.push(Finding::Holds(
                Alert::new(
                    Level::Incident,
                    "exec",
                    component,
                    &self.cfg.failure_mode,
                    self.cfg.severity,
                    Some(&self.cfg.playbook),
                    format!("check {} failed: {}", self.cfg.name, r.describe()),
                )
                .details(json!({
                    "check": self.cfg.name,
                    "command": self.cfg.command,
                    "exit_code": r.code,
                    "signal": r.signal,
                    "timed_out": r.timed_out,
                    "error": r.spawn_error,
                    "stdout": r.stdout,
                    "stderr": r.stderr,
                    "duration_ms": r.duration.as_millis() as u64,
                })),
            ));
        }
        self.last = Some(r);
        Ok(found)
    }

    fn stats(&self) -> Value {
        json!({
            "runs": self.runs,
            "failures": self.failures,
            "last_exit_code": self.last.as_ref().and_then(|r| r.code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_status_output_and_timeout() {
        let ok = run("echo fine", Duration::from_secs(5), &[]).await;
        assert!(ok.ok(), "{ok:?}");
        assert_eq!(ok.stdout, "fine\n");
        let bad = run("echo oops >&2; exit 3", Duration::from_secs(5), &[]).await;
        assert_eq!(
            (bad.ok(), bad.code, bad.stderr.as_str()),
            (false, Some(3), "oops\n")
        );
        let slow = run("sleep 30", Duration::from_millis(100), &[]).await;
        assert!(slow.timed_out && !slow.ok());
        assert!(slow.duration < Duration::from_secs(5));
        let env = run(
            "test \"$X\" = y",
            Duration::from_secs(5),
            &[("X", "y".to_owned())],
        )
        .await;
        assert!(env.ok());
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_the_check() {
        let d = tempfile::tempdir().expect("tempdir");
        let pidfile = d.path().join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; exit 0", pidfile.display());
        let r = run(&cmd, Duration::from_secs(5), &[]).await;
        assert!(r.ok(), "{r:?}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        // Killed with the group: it is gone (or a zombie about to be reaped by init).
        let gone = (0..100).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
            if alive {
                std::thread::sleep(Duration::from_millis(10));
            }
            !alive
        });
        assert!(gone, "background child {pid} survived");
    }
}
