//! The one process `resource_spike` watches when its `process` option is set: this
//! serve process (`"self"`) or the process whose PID a file holds (as `monit` checks a
//! service by its pidfile), read through sysinfo.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Which process is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessTarget {
    /// This process.
    Own,
    /// The process whose PID is the first word of this file.
    PidFile(PathBuf),
}

impl ProcessTarget {
    /// `"self"`, or a PID file path (relative paths from `root`, the state directory).
    pub fn parse(s: &str, root: &Path) -> ProcessTarget {
        match s {
            "self" => ProcessTarget::Own,
            p => ProcessTarget::PidFile(root.join(p)),
        }
    }

    /// The component incidents name: `grace` for this process, else the PID file's
    /// name without its extension (`worker.pid` → `worker`).
    pub fn component(&self) -> String {
        match self {
            ProcessTarget::Own => "grace".to_owned(),
            ProcessTarget::PidFile(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        }
    }

    /// The PID to read now; None when the PID file is missing or holds no number
    /// (the process is not running).
    fn pid(&self) -> Option<u32> {
        match self {
            ProcessTarget::Own => Some(std::process::id()),
            ProcessTarget::PidFile(p) => std::fs::read_to_string(p)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok(),
        }
    }
}

/// One reading of the watched process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessReading {
    /// Its PID.
    pub pid: u32,
    /// CPU use since the last reading, percent of one core (None on the first reading
    /// of this PID).
    pub cpu: Option<f64>,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Memory of the host, bytes.
    pub total_bytes: u64,
}

/// Reads one process. CPU use is the process's CPU time between two readings over the
/// wall time between them, measured here: sysinfo's own per-process percentage depends
/// on when the host's CPU times were last refreshed (at most every 200 ms), which made
/// readings at short intervals erratic.
pub struct ProcessProbe {
    target: ProcessTarget,
    sys: System,
    /// The previous reading: PID, CPU time (ms), when.
    last: Option<(u32, u64, Instant)>,
}

impl ProcessProbe {
    /// A probe of `target`.
    pub fn new(target: ProcessTarget) -> ProcessProbe {
        ProcessProbe {
            target,
            sys: System::new(),
            last: None,
        }
    }

    /// What is watched.
    pub fn target(&self) -> &ProcessTarget {
        &self.target
    }

    /// The process now; None when it is not running.
    pub fn read(&mut self) -> Option<ProcessReading> {
        let Some(pid) = self.target.pid() else {
            self.last = None;
            return None;
        };
        let spid = Pid::from_u32(pid);
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[spid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let now = Instant::now();
        let Some(p) = self.sys.process(spid) else {
            self.last = None;
            return None;
        };
        let (cpu_ms, rss_bytes) = (p.accumulated_cpu_time(), p.memory());
        // The first reading of a PID has nothing to compare with.
        let cpu = match self.last.replace((pid, cpu_ms, now)) {
            Some((was, before, at)) if was == pid => {
                cpu_percent(cpu_ms.saturating_sub(before), now.duration_since(at))
            }
            _ => None,
        };
        self.sys.refresh_memory();
        Some(ProcessReading {
            pid,
            cpu,
            rss_bytes,
            total_bytes: self.sys.total_memory(),
        })
    }
}

/// CPU time `used_ms` over the wall time `over`, percent of one core; None for an
/// interval too short to measure.
pub fn cpu_percent(used_ms: u64, over: Duration) -> Option<f64> {
    let wall = over.as_secs_f64() * 1000.0;
    (wall >= 1.0).then(|| used_ms as f64 * 100.0 / wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_this_process_or_a_pid_file_from_the_state_directory() {
        let root = Path::new("/state");
        assert_eq!(ProcessTarget::parse("self", root), ProcessTarget::Own);
        let t = ProcessTarget::parse("run/worker.pid", root);
        assert_eq!(t, ProcessTarget::PidFile(root.join("run/worker.pid")));
        assert_eq!(t.component(), "worker");
        assert_eq!(ProcessTarget::Own.component(), "grace");
    }

    #[test]
    fn cpu_is_cpu_time_over_wall_time() {
        assert_eq!(cpu_percent(50, Duration::from_millis(100)), Some(50.0));
        assert_eq!(cpu_percent(400, Duration::from_millis(200)), Some(200.0));
        assert_eq!(cpu_percent(5, Duration::ZERO), None);
    }

    #[test]
    fn a_spinning_thread_reads_as_most_of_a_core() {
        let _cores = crate::trigger::builtin::CPU_TEST.lock();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let spin = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let mut own = ProcessProbe::new(ProcessTarget::Own);
        own.read();
        std::thread::sleep(Duration::from_millis(300));
        let cpu = own.read().and_then(|r| r.cpu);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spin.join().expect("spinner");
        // At least a fifth of a core even on a host busy with other work.
        assert!(cpu.is_some_and(|c| c > 20.0), "{cpu:?}");
    }

    #[test]
    fn this_process_is_read_and_a_missing_pid_file_is_no_process() {
        let mut own = ProcessProbe::new(ProcessTarget::Own);
        let first = own.read().expect("this process runs");
        assert_eq!(first.pid, std::process::id());
        assert!(first.cpu.is_none() && first.rss_bytes > 0 && first.total_bytes > 0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(own.read().expect("again").cpu.is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut gone = ProcessProbe::new(ProcessTarget::PidFile(dir.path().join("x.pid")));
        assert!(gone.read().is_none());
        std::fs::write(dir.path().join("x.pid"), "not a pid\n").expect("write");
        assert!(gone.read().is_none());
    }
}
