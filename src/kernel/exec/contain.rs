//! Containment of exec kernels: every process a kernel's command starts ends with the
//! kernel, whatever it does (ignores SIGTERM, forks, double-forks, calls `setsid`).
//!
//! Two mechanisms, chosen once per process ([`init`]; `GRACE_CONTAINMENT=auto|cgroup|
//! subreaper` forces one, `auto` being the default):
//! - **cgroup**: where this process's cgroup v2 is writable, each kernel start runs in
//!   its own child cgroup (the child enters it before `exec`), and is ended with
//!   `cgroup.kill`. Nothing can leave a cgroup without write access to another one.
//! - **subreaper**: elsewhere this process is a child subreaper, so descendants that
//!   double-fork away come back to it instead of to init; a reaper thread reaps them.
//!
//! Under both, a kernel's members are found the same way and signalled: the leader and
//! all its descendants (by ppid links in `/proc`), every process carrying the kernel
//! start's mark in its environment ([`KERNEL_ENV`]), those seen before at a tick, then
//! every process sharing a process group or a session (other than serve's) with one of
//! them; and under cgroup, everything in the kernel's cgroup.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use super::cgroup;
use crate::kernel::exec::procfs::{self, Proc};

/// The variable that selects the mechanism: `auto` (default), `cgroup` or `subreaper`.
pub const MODE_ENV: &str = "GRACE_CONTAINMENT";
/// The variable marking every process of one kernel start: `<serve pid>.<generation>`.
/// Descendants inherit it, so even one that left the tree is found by it (unless it
/// clears its environment).
pub const KERNEL_ENV: &str = "GRACE_EXEC_KERNEL";

/// The mechanism in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// One cgroup v2 per kernel under this directory, ended with `cgroup.kill`.
    Cgroup(PathBuf),
    /// This process is a child subreaper; `why` says why cgroups are not used.
    Subreaper {
        /// Why not cgroups (forced, or what made them unavailable).
        why: String,
    },
}

impl Mechanism {
    /// One line for `serve.json` and `grace status`.
    pub fn describe(&self) -> String {
        match self {
            Mechanism::Cgroup(dir) => format!("cgroup ({})", dir.display()),
            Mechanism::Subreaper { why } => format!("subreaper ({why})"),
        }
    }
}

struct Global {
    mechanism: Mechanism,
    /// Pids of running kernel leaders: their tokio task reaps them, the reaper never does.
    leaders: Mutex<HashSet<u32>>,
    /// Process groups of running kernels (their leaders' pids).
    groups: Mutex<HashSet<i32>>,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

/// Chooses the mechanism (once per process) and sets it up: the base cgroup, or the
/// subreaper flag and the reaper thread. Returns the mechanism in force.
pub fn init() -> &'static Mechanism {
    &global().mechanism
}

fn global() -> &'static Global {
    GLOBAL.get_or_init(|| {
        let want = std::env::var(MODE_ENV).unwrap_or_default();
        let mechanism = match want.as_str() {
            "subreaper" => Mechanism::Subreaper {
                why: format!("{MODE_ENV}=subreaper"),
            },
            other => {
                if !matches!(other, "" | "auto" | "cgroup") {
                    tracing::warn!(value = other, "{MODE_ENV} is auto, cgroup or subreaper; using auto");
                }
                match cgroup::create_base() {
                    Ok(dir) => Mechanism::Cgroup(dir),
                    Err(why) => {
                        if other == "cgroup" {
                            tracing::error!(%why, "{MODE_ENV}=cgroup but no writable cgroup v2; using the subreaper");
                        }
                        Mechanism::Subreaper {
                            why: format!("no writable cgroup v2: {why}"),
                        }
                    }
                }
            }
        };
        if let Mechanism::Subreaper { .. } = mechanism {
            if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
                tracing::error!(error = %e, "cannot become a child subreaper");
            }
            let _ = std::thread::Builder::new()
                .name("grace-reaper".to_owned())
                .spawn(reaper);
        }
        tracing::info!(containment = %mechanism.describe(), "exec kernel containment");
        Global {
            mechanism,
            leaders: Mutex::new(HashSet::new()),
            groups: Mutex::new(HashSet::new()),
        }
    })
}

/// Reaps, every 100 ms, the children of this process that exited and that it did not
/// start itself: orphans re-parented to it as a subreaper. Known as such: they share a
/// running kernel's process group, live in another session (serve starts none), or
/// were seen alive with this process's [`KERNEL_ENV`] mark. Kernel leaders are left to
/// the tasks that wait on them.
fn reaper() {
    let me = std::process::id();
    let own_sid = procfs::stat(me).map(|p| p.sid).unwrap_or(0);
    let prefix = format!("{KERNEL_ENV}={me}.");
    let mut adopted: HashSet<u32> = HashSet::new();
    loop {
        let g = global();
        {
            let leaders = g.leaders.lock().unwrap_or_else(|p| p.into_inner());
            let groups = g.groups.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for pid in procfs::children_of(me) {
                if leaders.contains(&pid) {
                    continue;
                }
                let Some(p) = procfs::stat(pid) else { continue };
                if p.zombie() {
                    let ours = adopted.contains(&pid)
                        || groups.contains(&p.pgrp)
                        || (own_sid != 0 && p.sid != own_sid);
                    if ours {
                        let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
                        adopted.remove(&pid);
                    }
                } else if !adopted.contains(&pid) && procfs::env_has_prefix(pid, &prefix) {
                    adopted.insert(pid);
                }
            }
        }
        adopted.retain(|p| procfs::stat(*p).is_some());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Holds the leader registry while a kernel's command is spawned, so that the reaper
/// never takes the new leader's exit for an orphan's.
pub(crate) struct Spawning<'a> {
    leaders: std::sync::MutexGuard<'a, HashSet<u32>>,
}

impl Spawning<'_> {
    /// Begins a spawn.
    pub fn begin() -> Spawning<'static> {
        Spawning {
            leaders: global().leaders.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Records the spawned leader.
    pub fn done(mut self, pid: u32) {
        self.leaders.insert(pid);
        global()
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid as i32);
    }
}

/// The cgroup for a new kernel start, when cgroups are in force.
pub(crate) fn kernel_cgroup(kernel: &str, generation: u64) -> Result<Option<PathBuf>, String> {
    match &global().mechanism {
        Mechanism::Cgroup(base) => cgroup::create_kernel(base, kernel, generation)
            .map(Some)
            .map_err(|e| format!("cannot create a cgroup under {}: {e}", base.display())),
        Mechanism::Subreaper { .. } => Ok(None),
    }
}

/// The processes of one kernel start.
pub(crate) struct Contained {
    leader: u32,
    mark: String,
    cgroup: Option<PathBuf>,
    seen: Mutex<HashMap<u32, u64>>,
}

impl Contained {
    /// The value of [`KERNEL_ENV`] for a kernel start of `generation` in this process.
    pub fn mark_value(generation: u64) -> String {
        format!("{}.{generation:016x}", std::process::id())
    }

    /// Containment of the started leader `leader`.
    pub fn new(leader: u32, generation: u64, cgroup: Option<PathBuf>) -> Contained {
        Contained {
            leader,
            mark: format!("{KERNEL_ENV}={}", Contained::mark_value(generation)),
            cgroup,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The kernel's cgroup, if it has one.
    pub fn cgroup(&self) -> Option<&PathBuf> {
        self.cgroup.as_ref()
    }

    /// Every running process of the kernel (see the module documentation).
    pub fn members(&self) -> Vec<Proc> {
        let all = procfs::all();
        let me = std::process::id();
        let own = all.iter().find(|p| p.pid == me).copied();
        let by_pid: HashMap<u32, Proc> = all.iter().map(|p| (p.pid, *p)).collect();
        let mut set: HashSet<u32> = HashSet::new();
        if by_pid.get(&self.leader).is_some_and(|p| !p.zombie()) {
            set.insert(self.leader);
        }
        if let Some(dir) = &self.cgroup {
            set.extend(cgroup::procs(dir));
        }
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (pid, start) in seen.iter() {
                if by_pid.get(pid).is_some_and(|p| p.start == *start) {
                    set.insert(*pid);
                }
            }
        }
        for p in &all {
            if !set.contains(&p.pid) && !p.zombie() && procfs::env_has(p.pid, &self.mark) {
                set.insert(p.pid);
            }
        }
        // Descendants, then whoever shares a group or a session with a member.
        let (own_pgrp, own_sid) = own.map_or((0, 0), |p| (p.pgrp, p.sid));
        let parent_pgrp = own.and_then(|p| by_pid.get(&p.ppid)).map_or(0, |p| p.pgrp);
        loop {
            let groups: HashSet<i32> = set
                .iter()
                .filter_map(|p| by_pid.get(p))
                .map(|p| p.pgrp)
                .filter(|g| *g > 1 && *g != own_pgrp && *g != parent_pgrp)
                .collect();
            let sessions: HashSet<i32> = set
                .iter()
                .filter_map(|p| by_pid.get(p))
                .map(|p| p.sid)
                .filter(|s| *s > 1 && *s != own_sid)
                .collect();
            let before = set.len();
            for p in &all {
                if p.pid == me || p.pid <= 1 || p.zombie() || set.contains(&p.pid) {
                    continue;
                }
                if set.contains(&p.ppid) || groups.contains(&p.pgrp) || sessions.contains(&p.sid) {
                    set.insert(p.pid);
                }
            }
            if set.len() == before {
                break;
            }
        }
        set.remove(&me);
        set.into_iter()
            .filter_map(|p| by_pid.get(&p).copied())
            .filter(|p| !p.zombie())
            .collect()
    }

    /// Remembers the current members, so that one that later leaves the tree and clears
    /// its environment is still found (by pid and start time).
    pub fn track(&self) {
        let now = self.members();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|pid, start| now.iter().any(|p| p.pid == *pid && p.start == *start));
        for p in now {
            seen.insert(p.pid, p.start);
        }
    }

    /// Sends `sig` to every member and to its process group; returns how many members
    /// there were.
    pub fn signal_all(&self, sig: Signal) -> usize {
        let members = self.members();
        // Never serve's own group nor its parent's (the watchdog's), whatever a member
        // joined.
        let own_pgrp = nix::unistd::getpgrp().as_raw();
        let parent_pgrp = procfs::stat(std::os::unix::process::parent_id()).map_or(0, |p| p.pgrp);
        let mut groups = HashSet::new();
        for p in &members {
            let _ = kill(Pid::from_raw(p.pid as i32), sig);
            if p.pgrp > 1 && p.pgrp != own_pgrp && p.pgrp != parent_pgrp {
                groups.insert(p.pgrp);
            }
        }
        for g in groups {
            let _ = killpg(Pid::from_raw(g), sig);
        }
        members.len()
    }

    /// SIGKILLs every member at once: `cgroup.kill` under cgroup, then each member
    /// found; repeats while some remain, up to `timeout`. Returns the members left.
    pub fn kill_all(&self, timeout: Duration) -> Vec<Proc> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(dir) = &self.cgroup {
                let _ = cgroup::kill(dir);
            }
            if self.signal_all(Signal::SIGKILL) == 0 {
                return Vec::new();
            }
            if std::time::Instant::now() >= deadline {
                return self.members();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// After the members are gone: waits for the cgroup to empty and removes it, and
    /// unregisters the leader.
    pub fn release(&self) {
        if let Some(dir) = &self.cgroup {
            cgroup::wait_empty(dir, Duration::from_secs(1));
            cgroup::remove(dir);
        }
        let g = global();
        g.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.leader);
        g.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(self.leader as i32));
    }
}
