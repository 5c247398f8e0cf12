//! The child process of an `exec` kernel: started in its own process group, waited on at
//! once, stopped with SIGTERM then SIGKILL of the whole group, and never left behind.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::options::ExecOptions;
use crate::kernel::KernelError;

/// Longest line of the child's output logged as one event; the rest is cut.
const MAX_LINE: usize = 4096;
/// How long to wait for the kernel to reap its child after SIGKILL.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Why a child exited, in the words recorded as the kernel's failure reason.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => "exited".to_owned(),
    }
}

/// A running child and its process group (the group's id is the child's pid).
///
/// Dropping it SIGKILLs the group unless the group is known gone, so that killing or
/// panicking the kernel's actor leaves no orphan. The leader is reaped by the task that
/// waits on it; it never stays a zombie.
pub(crate) struct Group {
    pid: i32,
    exit: watch::Receiver<Option<String>>,
    gone: Arc<AtomicBool>,
}

impl Group {
    /// Starts the command in a new process group. A task waits on it at once; when it
    /// exits, the rest of its group is killed, the reason is published and `on_exit` runs.
    pub fn spawn(
        kernel: &str,
        opts: &ExecOptions,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<Group, KernelError> {
        let mut cmd = tokio::process::Command::new(&opts.command);
        cmd.args(&opts.args)
            .envs(&opts.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = &opts.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| KernelError::Io {
            context: format!(
                "kernel {kernel}: cannot start {:?} (check option command and cwd)",
                opts.command
            ),
            source,
        })?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| KernelError::failed(format!("kernel {kernel}: child has no pid")))?;
        let kernel: Arc<str> = Arc::from(kernel);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(out, kernel.clone(), "stdout"));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(err, kernel.clone(), "stderr"));
        }
        let (tx, rx) = watch::channel(None);
        let gone = Arc::new(AtomicBool::new(false));
        let waiter_gone = gone.clone();
        tokio::spawn(async move {
            let reason = match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => format!("waiting on the child failed: {e}"),
            };
            // The leader is gone: the rest of its group goes too, so no orphan of a
            // crashed (or stopped) command survives it.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            waiter_gone.store(true, Ordering::Release);
            tracing::info!(kernel = %kernel, pid, reason = %reason, "exec child exited");
            tx.send_replace(Some(reason));
            on_exit();
        });
        Ok(Group {
            pid,
            exit: rx,
            gone,
        })
    }

    /// The child's pid (and process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Why the child exited, once it has.
    pub fn exit_reason(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Stops the group gracefully: SIGTERM (and SIGCONT, so that a stopped process can
    /// act on it), up to `timeout` for the child to exit, then SIGKILL of the group.
    /// Returns once the child is reaped.
    pub async fn terminate(&self, timeout: Duration) {
        if self.gone.load(Ordering::Acquire) {
            return;
        }
        let pg = Pid::from_raw(self.pid);
        let _ = killpg(pg, Signal::SIGTERM);
        let _ = killpg(pg, Signal::SIGCONT);
        let mut exit = self.exit.clone();
        if tokio::time::timeout(timeout, exit.wait_for(Option::is_some))
            .await
            .is_err()
        {
            tracing::warn!(
                pid = self.pid,
                ?timeout,
                "exec child ignored SIGTERM; SIGKILL"
            );
            let _ = killpg(pg, Signal::SIGKILL);
            let _ = tokio::time::timeout(REAP_WAIT, exit.wait_for(Option::is_some)).await;
        }
    }

    /// Sends a signal to the whole group.
    pub fn signal(&self, sig: Signal) -> Result<(), String> {
        if self.gone.load(Ordering::Acquire) {
            return Err("the child has exited".to_owned());
        }
        killpg(Pid::from_raw(self.pid), sig).map_err(|e| e.to_string())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.gone.load(Ordering::Acquire) {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }
}

/// Logs the child's output line by line (lines cut at [`MAX_LINE`] bytes).
async fn forward(mut r: impl AsyncRead + Unpin, kernel: Arc<str>, stream: &'static str) {
    let emit = |line: &[u8]| {
        tracing::info!(
            target: "grace::exec",
            kernel = %kernel,
            stream,
            line = %String::from_utf8_lossy(line),
            "output"
        );
    };
    let mut line = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                emit(&line);
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_name_the_status_or_the_signal() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "killed by signal 9 (SIGKILL)"
        );
    }
}
