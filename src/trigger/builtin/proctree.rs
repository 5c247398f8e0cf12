//! The process tree `resource_spike` watches by default: serve itself and every process
//! whose ancestry reaches it (its exec kernels' processes and what they start), read
//! through sysinfo. Other programs on the host are not Grace's to remediate.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::process::cpu_percent;

/// `root` and every pid whose parent chain reaches it, from (pid, parent) pairs.
pub fn descendants(
    root: u32,
    parents: impl IntoIterator<Item = (u32, Option<u32>)>,
) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, parent) in parents {
        if let Some(pp) = parent.filter(|pp| *pp != pid) {
            children.entry(pp).or_default().push(pid);
        }
    }
    let mut out = BTreeSet::from([root]);
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for c in children.get(&p).into_iter().flatten() {
            if out.insert(*c) {
                todo.push(*c);
            }
        }
    }
    out
}

/// One reading of a process tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeReading {
    /// The tree's root.
    pub root: u32,
    /// Its processes now (the root included).
    pub pids: BTreeSet<u32>,
    /// CPU use since the last reading, percent of one core (None on the first reading).
    pub cpu_cores: Option<f64>,
    /// The same, percent of the host's CPU capacity (every core).
    pub cpu: Option<f64>,
    /// Resident memory of all its processes, bytes.
    pub rss_bytes: u64,
    /// Memory of the host, bytes.
    pub total_bytes: u64,
}

/// Reads the CPU and memory of a process and its descendants. CPU is the CPU time its
/// processes used between two readings over the wall time between them: a process
/// that started in between counts from its start, one that ended in between is lost.
pub struct TreeProbe {
    root: u32,
    sys: System,
    cores: f64,
    last: Option<(HashMap<u32, u64>, Instant)>,
}

impl TreeProbe {
    /// A probe of the tree under `root` (serve: `std::process::id()`).
    pub fn new(root: u32) -> TreeProbe {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        TreeProbe {
            root,
            sys: System::new(),
            cores: cores as f64,
            last: None,
        }
    }

    /// The tree's root.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// The tree now.
    pub fn read(&mut self) -> TreeReading {
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory(),
        );
        let now = Instant::now();
        let procs = self.sys.processes();
        let pids = descendants(
            self.root,
            procs
                .iter()
                .filter(|(_, p)| p.thread_kind().is_none())
                .map(|(pid, p)| (pid.as_u32(), p.parent().map(Pid::as_u32))),
        );
        let mut times = HashMap::with_capacity(pids.len());
        let mut rss_bytes = 0;
        for pid in &pids {
            if let Some(p) = procs.get(&Pid::from_u32(*pid)) {
                times.insert(*pid, p.accumulated_cpu_time());
                rss_bytes += p.memory();
            }
        }
        let used = self.last.as_ref().map(|(before, at)| {
            let ms: u64 = times
                .iter()
                .map(|(pid, ms)| ms.saturating_sub(before.get(pid).copied().unwrap_or(0)))
                .sum();
            (ms, now.duration_since(*at))
        });
        let pids: BTreeSet<u32> = times.keys().copied().collect();
        self.last = Some((times, now));
        let cpu_cores = used.and_then(|(ms, over)| cpu_percent(ms, over));
        self.sys.refresh_memory();
        TreeReading {
            root: self.root,
            pids,
            cpu_cores,
            cpu: cpu_cores.map(|c| c / self.cores),
            rss_bytes,
            total_bytes: self.sys.total_memory(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use crate::trigger::builtin::process::{ProcessProbe, ProcessTarget};

    #[test]
    fn descendants_follow_parent_links_from_the_root_only() {
        let links = [
            (1, None),
            (10, Some(1)),
            (11, Some(10)),
            (12, Some(11)),
            (20, Some(1)),
            (21, Some(20)),
            (30, Some(30)),
        ];
        assert_eq!(descendants(10, links), BTreeSet::from([10, 11, 12]));
        assert_eq!(descendants(20, links), BTreeSet::from([20, 21]));
        assert_eq!(descendants(99, links), BTreeSet::from([99]));
    }

    /// Kills a child's whole process group when dropped.
    struct Group(Child);

    impl Drop for Group {
        fn drop(&mut self) {
            let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }

    fn spawn(script: &str) -> Group {
        Group(
            Command::new("sh")
                .args(["-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("sh"),
        )
    }

    #[test]
    fn a_busy_grandchild_counts_for_its_tree_and_a_busy_stranger_does_not() {
        let _cores = crate::trigger::builtin::CPU_TEST.lock();
        // A parent whose child spins, and a spinner that is not its descendant.
        let parent = spawn("sh -c 'while :; do :; done' & wait");
        let stranger = spawn("while :; do :; done");
        let mut tree = TreeProbe::new(parent.0.id());
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("stranger.pid");
        std::fs::write(&pid_file, stranger.0.id().to_string()).expect("pid file");
        let mut alone = ProcessProbe::new(ProcessTarget::PidFile(pid_file));
        // Wait for the parent to start its child.
        let t = Instant::now();
        let first = loop {
            let r = tree.read();
            if r.pids.len() >= 2 || t.elapsed() > Duration::from_secs(3) {
                break r;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            first.pids.len(),
            2,
            "the parent and its spinning child: {first:?}"
        );
        assert!(!first.pids.contains(&stranger.0.id()));
        alone.read();
        std::thread::sleep(Duration::from_millis(500));
        let r = tree.read();
        let stranger_cpu = alone.read().and_then(|p| p.cpu);
        assert!(r.pids.contains(&parent.0.id()) && !r.pids.contains(&stranger.0.id()));
        let tree_cpu = r.cpu_cores.expect("a second reading");
        // Both spinners get a share of a core even on a host whose two cores run a
        // dozen busy processes; the tree is the parent (waiting) and one spinner, so
        // at most a core and a bit.
        assert!(tree_cpu > 5.0 && tree_cpu < 130.0, "{tree_cpu}");
        assert!(stranger_cpu.is_some_and(|c| c > 5.0), "{stranger_cpu:?}");
        assert!(r.rss_bytes > 0 && r.total_bytes > r.rss_bytes);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!((r.cpu.expect("host share") - tree_cpu / cores).abs() < 1e-9);
    }
}
