//! Resource samples for the evidence: CPU and memory of the host (sysinfo) and the use
//! of the file system holding the state directory (statvfs).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One sample of the host's resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// CPU use over the sampling interval, percent of all cores.
    pub cpu_percent: f64,
    /// Memory in use, percent of total.
    pub memory_percent: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Total memory, bytes.
    pub memory_total_bytes: u64,
    /// Use of the state directory's file system, percent (None if it cannot be read).
    pub disk_percent: Option<f64>,
    /// Bytes available there to unprivileged users.
    pub disk_available_bytes: Option<u64>,
    /// One-minute load average.
    pub load_average_1m: f64,
}

fn disk_use(dir: &Path) -> Option<(f64, u64)> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    let frag = s.fragment_size() as u64;
    let blocks = s.blocks() as u64;
    let free = s.blocks_free() as u64;
    let avail = s.blocks_available() as u64;
    let used = blocks.saturating_sub(free);
    // As df computes it: what is used out of what users could use.
    let usable = used + avail;
    if usable == 0 {
        return None;
    }
    Some((used as f64 * 100.0 / usable as f64, avail * frag))
}

/// Samples the host now. Blocks for sysinfo's minimum CPU interval (about 200 ms): call
/// it from a blocking thread.
pub fn sample(state_dir: &Path) -> ResourceSample {
    let mut sys = sysinfo::System::new();
    sys.refresh_cpu_usage();
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    sys.refresh_cpu_usage();
    sys.refresh_memory();
    let total = sys.total_memory();
    let used = sys.used_memory();
    let disk = disk_use(state_dir);
    ResourceSample {
        cpu_percent: f64::from(sys.global_cpu_usage()),
        memory_percent: if total == 0 {
            0.0
        } else {
            used as f64 * 100.0 / total as f64
        },
        memory_used_bytes: used,
        memory_total_bytes: total,
        disk_percent: disk.map(|d| d.0),
        disk_available_bytes: disk.map(|d| d.1),
        load_average_1m: sysinfo::System::load_average().one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_of_this_host_is_plausible() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = sample(d.path());
        assert!((0.0..=100.0).contains(&s.cpu_percent), "{s:?}");
        assert!(s.memory_total_bytes > 0 && s.memory_used_bytes <= s.memory_total_bytes);
        let disk = s.disk_percent.expect("statvfs of a temp dir");
        assert!((0.0..=100.0).contains(&disk), "{s:?}");
    }
}
