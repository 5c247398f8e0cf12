//! Samples of this process (CPU time, memory, descriptors, threads, start time: the
//! `process_*` figures of `/metrics`) and of the host (CPU, memory, load: the
//! dashboard's `host` section), read through sysinfo by the readings task.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate};

/// This process, as the Prometheus client libraries name its figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessSample {
    /// User and system CPU time spent, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_memory_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The descriptor limit (RLIMIT_NOFILE, soft).
    pub max_fds: u64,
    /// Threads.
    pub threads: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: u64,
}

/// The host.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostSample {
    /// CPU use over the last interval, percent of all cores.
    pub cpu_percent: f32,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory, bytes.
    pub memory_total_bytes: u64,
    /// Load average over one minute.
    pub load_1m: f64,
}

/// This process's threads, from `/proc/self/status`.
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// Takes samples; keeps what sysinfo needs between two (CPU use is a difference).
#[derive(Debug)]
pub struct Sampler {
    sys: sysinfo::System,
    pid: Pid,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            sys: sysinfo::System::new(),
            pid: Pid::from_u32(std::process::id()),
        }
    }
}

impl Sampler {
    /// Samples this process and the host now. Reads /proc: call it off the async
    /// workers.
    pub fn sample(&mut self) -> (ProcessSample, HostSample) {
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        self.sys
            .refresh_processes_specifics(ProcessesToUpdate::Some(&[self.pid]), true, kind);
        self.sys
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let process = self
            .sys
            .process(self.pid)
            .map(|p| ProcessSample {
                cpu_seconds: p.accumulated_cpu_time() as f64 / 1000.0,
                resident_memory_bytes: p.memory(),
                virtual_memory_bytes: p.virtual_memory(),
                open_fds: p.open_files().unwrap_or(0) as u64,
                max_fds: p.open_files_limit().unwrap_or(0) as u64,
                threads: threads().unwrap_or(1),
                start_time_seconds: p.start_time(),
            })
            .unwrap_or_default();
        let host = HostSample {
            cpu_percent: self.sys.global_cpu_usage(),
            memory_used_bytes: self.sys.used_memory(),
            memory_total_bytes: self.sys.total_memory(),
            load_1m: sysinfo::System::load_average().one,
        };
        (process, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_and_the_host() {
        let mut s = Sampler::default();
        let _held = std::fs::File::open("/proc/self/stat").expect("open");
        let (p, h) = s.sample();
        assert!(p.resident_memory_bytes > 0 && p.virtual_memory_bytes >= p.resident_memory_bytes);
        assert!(p.open_fds >= 4 && p.max_fds >= p.open_fds, "{p:?}");
        assert!(
            p.threads >= 1 && p.start_time_seconds > 1_600_000_000,
            "{p:?}"
        );
        assert!(h.memory_total_bytes >= h.memory_used_bytes && h.memory_total_bytes > 0);
    }
}
