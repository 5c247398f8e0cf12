//! The one process `resource_spike` watches when its `process` option is set: this
//! serve process (`"self"`) or the process whose PID a file holds (as `monit` checks a
//! service by its pidfile), read through sysinfo.

use std::path::{Path, PathBuf};

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

/// Reads one process. It has its own sysinfo `System`, because a process's CPU use is
/// computed from the host's CPU times between two refreshes of this one.
pub struct ProcessProbe {
    target: ProcessTarget,
    sys: System,
    primed: Option<u32>,
}

impl ProcessProbe {
    /// A probe of `target`.
    pub fn new(target: ProcessTarget) -> ProcessProbe {
        ProcessProbe {
            target,
            sys: System::new(),
            primed: None,
        }
    }

    /// What is watched.
    pub fn target(&self) -> &ProcessTarget {
        &self.target
    }

    /// The process now; None when it is not running.
    pub fn read(&mut self) -> Option<ProcessReading> {
        let Some(pid) = self.target.pid() else {
            self.primed = None;
            return None;
        };
        let spid = Pid::from_u32(pid);
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[spid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let Some(p) = self.sys.process(spid) else {
            self.primed = None;
            return None;
        };
        let (cpu, rss_bytes) = (f64::from(p.cpu_usage()), p.memory());
        // The first reading of a PID has nothing to compare with.
        let cpu = (self.primed.replace(pid) == Some(pid)).then_some(cpu);
        self.sys.refresh_memory();
        Some(ProcessReading {
            pid,
            cpu,
            rss_bytes,
            total_bytes: self.sys.total_memory(),
        })
    }
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
    fn this_process_is_read_and_a_missing_pid_file_is_no_process() {
        let mut own = ProcessProbe::new(ProcessTarget::Own);
        let first = own.read().expect("this process runs");
        assert_eq!(first.pid, std::process::id());
        assert!(first.cpu.is_none() && first.rss_bytes > 0 && first.total_bytes > 0);
        assert!(own.read().expect("again").cpu.is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut gone = ProcessProbe::new(ProcessTarget::PidFile(dir.path().join("x.pid")));
        assert!(gone.read().is_none());
        std::fs::write(dir.path().join("x.pid"), "not a pid\n").expect("write");
        assert!(gone.read().is_none());
    }
}
