//! OS processes: starting serve in its own process group, stopping a group gracefully,
//! reaping and killing orphans (the watchdog is a child subreaper), and reading `/proc`.
//!
//! Architecture Invariant: only `watchdog/` sends signals to serve processes.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Makes this process the reaper of its orphaned descendants, so a grandchild that
/// double-forks away from serve becomes our child and can be reaped and killed.
pub(crate) fn set_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// The variable every process the watchdog starts carries (and its descendants inherit):
/// the absolute state directory. A watchdog replacing a killed predecessor finds the
/// whole leftover tree by it, even descendants that left serve's process group.
pub const SUPERVISED_ENV: &str = "GRACE_SUPERVISED_BY";

/// Where a background watchdog sends serve's stdout and stderr: only what serve writes
/// outside its log (a panic message, a library printing), since serve is told to keep
/// its records off stderr ([`crate::telemetry::STDERR_ENV`] `off`). The file is rotated
/// at each start once past its size or age.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    /// The file (`logs/serve.out`).
    pub path: std::path::PathBuf,
    /// Its bounds.
    pub rotation: crate::telemetry::Rotation,
}

/// Starts `argv` as the leader of a new process group, stdin closed, stdout and stderr
/// appended to `output` (else inherited), without the variables that belong to the
/// watchdog itself, with [`SUPERVISED_ENV`] set to `state_dir`.
pub(crate) fn spawn(
    argv: &[String],
    state_dir: &Path,
    output: Option<&CapturedOutput>,
) -> std::io::Result<Child> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove(super::DETACH_ENV)
        .env(SUPERVISED_ENV, state_dir)
        .kill_on_drop(false);
    if let Some(out) = output {
        let f = crate::telemetry::RotatingFile::handoff(&out.path, out.rotation)?;
        cmd.stdout(f.try_clone()?)
            .stderr(f)
            .env(crate::telemetry::STDERR_ENV, "off");
    }
    cmd.spawn()
}

/// Sends `sig` to process group `pgid`; false when no process is left in it.
pub(crate) fn signal_group(pgid: i32, sig: Signal) -> bool {
    if pgid <= 1 {
        return false;
    }
    !matches!(signal::killpg(Pid::from_raw(pgid), sig), Err(Errno::ESRCH))
}

/// Stops our child `child`, leader of group `pgid`: SIGTERM (and SIGCONT, so a stopped
/// group sees it) to the group, up to `timeout` for the leader to exit, then SIGKILL.
/// Whatever is left in the group is killed too.
pub(crate) async fn stop_group(
    child: &mut Child,
    pgid: i32,
    timeout: Duration,
) -> Option<ExitStatus> {
    signal_group(pgid, Signal::SIGTERM);
    signal_group(pgid, Signal::SIGCONT);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    signal_group(pgid, Signal::SIGKILL);
    status
}

/// Stops a process that is not our child (so it cannot be waited for): SIGTERM and
/// SIGCONT to its group, polling until it is gone, SIGKILL after `timeout`. Returns
/// whether it is gone.
pub(crate) async fn stop_foreign(pid: u32, pgid: i32, timeout: Duration) -> bool {
    let send = |sig| {
        if pgid > 1 {
            signal_group(pgid, sig);
        } else {
            let _ = signal::kill(Pid::from_raw(pid as i32), sig);
        }
    };
    send(Signal::SIGTERM);
    send(Signal::SIGCONT);
    if wait_gone(pid, timeout).await {
        send(Signal::SIGKILL);
        return true;
    }
    send(Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(5)).await
}

/// Polls until `pid` no longer runs (gone or a zombie).
pub(crate) async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        reap_if_ours(pid);
        if !alive(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn reap_if_ours(pid: u32) {
    if stat(pid).is_some_and(|s| s.ppid == std::process::id() && s.state == 'Z') {
        let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
    }
}

/// The fields of `/proc/<pid>/stat` the watchdog uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// R, S, D, T, Z, ...
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Process group.
    pub pgrp: i32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Reads `/proc/<pid>/stat`.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) may hold spaces and parentheses: cut at the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` runs (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    pid > 0 && stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// The argv of `pid`.
pub(crate) fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// Whether `pid` is a `grace serve` of the state directory `root`: its argv has `serve`
/// and a `--state-dir` naming `root`, or its environment has `GRACE_STATE_DIR=root`.
pub(crate) fn is_serve_of(pid: u32, root: &Path) -> bool {
    let Some(argv) = cmdline(pid) else {
        return false;
    };
    if !argv.iter().any(|a| a == "serve") {
        return false;
    }
    let want = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let same = |d: &str| {
        let p = Path::new(d);
        let p = if p.is_relative() {
            match std::fs::read_link(format!("/proc/{pid}/cwd")) {
                Ok(cwd) => cwd.join(p),
                Err(_) => p.to_path_buf(),
            }
        } else {
            p.to_path_buf()
        };
        std::fs::canonicalize(&p).unwrap_or(p) == want
    };
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--state-dir" {
            if let Some(d) = it.next() {
                return same(d);
            }
        } else if let Some(d) = a.strip_prefix("--state-dir=") {
            return same(d);
        }
    }
    std::fs::read(format!("/proc/{pid}/environ"))
        .ok()
        .and_then(|env| {
            env.split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(b"GRACE_STATE_DIR=").map(|v| v.to_vec()))
        })
        .is_some_and(|v| same(&String::from_utf8_lossy(&v)))
}

/// The processes (other than this one) whose environment has `key=value`.
pub(crate) fn with_env(key: &str, value: &[u8]) -> Vec<u32> {
    let me = std::process::id();
    let mut want = key.as_bytes().to_vec();
    want.push(b'=');
    want.extend_from_slice(value);
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == want.as_slice()) {
                out.push(pid);
            }
        }
    }
    out
}

/// The pids whose parent is this process.
pub(crate) fn children_of_self() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    // /proc/<pid>/task/<tid>/children is cheap; reparented orphans may hang off any thread.
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{me}/task")) {
        let mut any = false;
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                any = true;
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
        if any {
            return out;
        }
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for e in procs.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if stat(pid).is_some_and(|s| s.ppid == me) {
                out.push(pid);
            }
        }
    }
    out
}

/// Reaps our children other than `keep` that have exited (reparented orphans), and when
/// `kill` is set first SIGKILLs those still running. Returns the pids dealt with.
pub(crate) fn sweep_orphans(keep: Option<u32>, kill: bool) -> Vec<u32> {
    let mut dealt = Vec::new();
    for pid in children_of_self() {
        if Some(pid) == keep {
            continue;
        }
        let p = Pid::from_raw(pid as i32);
        if kill {
            let _ = signal::kill(p, Signal::SIGKILL);
            if waitpid(p, None).is_ok() {
                dealt.push(pid);
            }
        } else if stat(pid).is_some_and(|s| s.state == 'Z')
            && waitpid(p, Some(WaitPidFlag::WNOHANG)).is_ok()
        {
            dealt.push(pid);
        }
    }
    dealt
}

/// What ending a generation left running: pid and command line.
pub(crate) type Left = Vec<(u32, String)>;

/// Ends every process of the serve generation that just ended (serve `old` exited, was
/// killed or was stopped), before the next serve starts: the kernels' cgroups that
/// serve left (`cgroup.kill`), and, round after round until none is left, every child
/// of ours (we are a subreaper: whatever is orphaned comes to us, even later, as its
/// parents die) and every process marked with [`SUPERVISED_ENV`]`=mark`, each with its
/// process group, all SIGKILLed and reaped. Returns what is still running after
/// `timeout` (a process in uninterruptible sleep, say).
pub(crate) async fn end_generation(old: u32, mark: &Path, timeout: Duration) -> Left {
    let deadline = tokio::time::Instant::now() + timeout;
    crate::kernel::exec::cgroup::end_serve_cgroups(old, timeout.min(Duration::from_secs(1)));
    let own_pgrp = nix::unistd::getpgrp().as_raw();
    loop {
        let mut targets = children_of_self();
        for pid in with_env(SUPERVISED_ENV, mark.as_os_str().as_encoded_bytes()) {
            if !targets.contains(&pid) {
                targets.push(pid);
            }
        }
        let live: Vec<u32> = targets.into_iter().filter(|p| alive(*p)).collect();
        // Reap whoever of ours has exited (killed in the round before).
        sweep_orphans(None, false);
        if live.is_empty() {
            return Vec::new();
        }
        if tokio::time::Instant::now() >= deadline {
            return live
                .into_iter()
                .map(|p| (p, cmdline(p).map(|a| a.join(" ")).unwrap_or_default()))
                .collect();
        }
        for pid in &live {
            if let Some(s) = stat(*pid) {
                if s.pgrp > 1 && s.pgrp != own_pgrp {
                    signal_group(s.pgrp, Signal::SIGKILL);
                }
            }
            let _ = signal::kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let s =
            parse_stat("42 (a b) c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0")
                .expect("parse");
        assert_eq!(
            s,
            Stat {
                state: 'S',
                ppid: 7,
                pgrp: 42,
                start_ticks: 98765
            }
        );
    }

    #[test]
    fn this_process_is_alive_and_visible() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(stat(me).is_some_and(|s| s.start_ticks > 0));
        assert!(!alive(0));
    }
}
