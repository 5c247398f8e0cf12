//! The child process of an `exec` kernel: started in its own process group (and its own
//! cgroup where cgroups are in force), waited on at once, stopped with SIGTERM then
//! SIGKILL of everything it started (see [`super::contain`]), and never left behind.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::contain::{self, Contained, Spawning, KERNEL_ENV};
use super::options::ExecOptions;
use crate::kernel::KernelError;

/// Longest line of the child's output logged as one event; the rest is cut.
const MAX_LINE: usize = 4096;
/// How long to wait for the kernel to reap its child after SIGKILL.
const REAP_WAIT: Duration = Duration::from_secs(5);
/// How long killing what is left of a kernel whose leader exited may keep trying.
const SWEEP_WAIT: Duration = Duration::from_secs(2);

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

/// A running child and everything it starts (its process group's id is its pid).
///
/// Dropping it SIGKILLs all of that unless it is known gone, so that killing or
/// panicking the kernel's actor leaves no orphan. The leader is reaped by the task that
/// waits on it; it never stays a zombie.
pub(crate) struct Group {
    pid: i32,
    exit: watch::Receiver<Option<String>>,
    gone: Arc<AtomicBool>,
    contained: Arc<Contained>,
}

/// Makes the child enter the cgroup whose `cgroup.procs` is open as `fd` before it
/// execs the command, so that nothing it starts is ever outside the cgroup.
///
/// `unsafe` is needed because std runs code in the child between fork and exec only
/// through `pre_exec`; moving the child from the parent after spawn instead would let
/// it fork before the move and its children would stay outside.
#[allow(unsafe_code)]
fn enter_cgroup(cmd: &mut tokio::process::Command, fd: RawFd) {
    // SAFETY: the closure runs in the forked child, where only async-signal-safe calls
    // are sound: it makes one write(2) to a descriptor opened before the fork (it stays
    // open until the parent drops it after the spawn), allocates nothing and takes no
    // lock. Writing "0" to cgroup.procs moves the writing process.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

impl Group {
    /// Starts the command in a new process group. A task waits on it at once; when it
    /// exits, the rest of its group is killed, the reason is published and `on_exit` runs.
    pub fn spawn(
        kernel: &str,
        generation: u64,
        opts: &ExecOptions,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<Group, KernelError> {
        let cgroup = contain::kernel_cgroup(kernel, generation)
            .map_err(|e| KernelError::failed(format!("kernel {kernel}: {e}")))?;
        let procs = match &cgroup {
            Some(dir) => Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .map_err(|source| KernelError::Io {
                        context: format!("kernel {kernel}: cannot open {}", dir.display()),
                        source,
                    })?,
            ),
            None => None,
        };
        let mut cmd = tokio::process::Command::new(&opts.command);
        cmd.args(&opts.args)
            .envs(&opts.env)
            .env(KERNEL_ENV, Contained::mark_value(generation))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = &opts.cwd {
            cmd.current_dir(dir);
        }
        if let Some(f) = &procs {
            enter_cgroup(&mut cmd, f.as_raw_fd());
        }
        let spawning = Spawning::begin();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(source) => {
                drop(spawning);
                if let Some(dir) = &cgroup {
                    super::cgroup::remove(dir);
                }
                return Err(KernelError::Io {
                    context: format!(
                        "kernel {kernel}: cannot start {:?} (check option command and cwd)",
                        opts.command
                    ),
                    source,
                });
            }
        };
        drop(procs);
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| KernelError::failed(format!("kernel {kernel}: child has no pid")))?;
        spawning.done(pid as u32);
        let contained = Arc::new(Contained::new(pid as u32, generation, cgroup));
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
        let waiter_contained = contained.clone();
        tokio::spawn(async move {
            let reason = match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => format!("waiting on the child failed: {e}"),
            };
            // The leader is gone: everything it started goes too, so no orphan of a
            // crashed (or stopped) command survives it.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let k = kernel.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let left = waiter_contained.kill_all(SWEEP_WAIT);
                if !left.is_empty() {
                    tracing::error!(kernel = %k, left = ?left, "processes of the kernel survived SIGKILL");
                }
                waiter_contained.release();
            })
            .await;
            waiter_gone.store(true, Ordering::Release);
            tracing::info!(kernel = %kernel, pid, reason = %reason, "exec child exited");
            tx.send_replace(Some(reason));
            on_exit();
        });
        Ok(Group {
            pid,
            exit: rx,
            gone,
            contained,
        })
    }

    /// The kernel's cgroup, when cgroups are in force.
    pub fn cgroup(&self) -> Option<String> {
        self.contained.cgroup().map(|d| d.display().to_string())
    }

    /// Remembers the processes the command has started so far (called at every tick).
    pub fn track(&self) {
        if !self.gone.load(Ordering::Acquire) {
            self.contained.track();
        }
    }

    /// The child's pid (and process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Why the child exited, once it has.
    pub fn exit_reason(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Stops everything the command started gracefully: SIGTERM (and SIGCONT, so that
    /// a stopped process can act on it) to every process of the kernel, up to `timeout`
    /// for the leader to exit, then SIGKILL of all of them. Once the leader has exited,
    /// its waiter kills whatever is left. Returns once the child is reaped and nothing of
    /// it is left (or [`REAP_WAIT`] passed).
    pub async fn terminate(&self, timeout: Duration) {
        if self.gone.load(Ordering::Acquire) {
            return;
        }
        let c = self.contained.clone();
        let _ = tokio::task::spawn_blocking(move || {
            c.signal_all(Signal::SIGTERM);
            c.signal_all(Signal::SIGCONT);
        })
        .await;
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
            let c = self.contained.clone();
            let _ = tokio::task::spawn_blocking(move || c.kill_all(Duration::ZERO)).await;
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
            // One round at once; the waiter, seeing the leader die, kills the rest.
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            self.contained.kill_all(Duration::ZERO);
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
