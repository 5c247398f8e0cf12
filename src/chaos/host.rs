//! Resource thresholds relative to what the host uses when a spawned instance starts.
//!
//! A RAM or disk siege that must cross a fixed percentage (80 % of memory, 90 % of a
//! disk) would have to fill most of a large host, which endangers everyone on it. A
//! scenario asks instead for a threshold a known number of MiB above the current use
//! (`spawn: { memory_threshold_above_use_mib: 1536 }`), and its siege adds a known,
//! larger amount: the trigger really crosses its threshold, and the host keeps almost
//! all of its headroom.

use std::path::Path;

use super::scenario::SpawnOptions;

/// Used and usable bytes of one resource (usable = used + available).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use.
    pub used: u64,
    /// Bytes in use plus bytes still available.
    pub usable: u64,
}

impl Usage {
    /// The percentage reached when `above` more bytes are used, kept below 100 so that
    /// it stays a valid threshold (`None` when nothing is usable).
    pub fn percent_above(&self, above: u64) -> Option<f64> {
        if self.usable == 0 {
            return None;
        }
        let p = self.used.saturating_add(above) as f64 * 100.0 / self.usable as f64;
        Some((p * 100.0).round().clamp(0.0, 9_999.0) / 100.0)
    }

    /// Memory as `resource_spike` counts it: total minus available (`/proc/meminfo`).
    pub fn memory() -> std::io::Result<Usage> {
        let info = std::fs::read_to_string("/proc/meminfo")?;
        let field = |name: &str| -> Option<u64> {
            info.lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
                .map(|kib| kib.saturating_mul(1024))
        };
        match (field("MemTotal:"), field("MemAvailable:")) {
            (Some(total), Some(available)) => Ok(Usage {
                used: total.saturating_sub(available),
                usable: total,
            }),
            _ => Err(std::io::Error::other(
                "/proc/meminfo has no MemTotal or MemAvailable",
            )),
        }
    }

    /// The file system holding `path`, as `df` counts it (used / (used + available)).
    pub fn disk(path: &Path) -> std::io::Result<Usage> {
        let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
        let frag = st.fragment_size();
        let used = st.blocks().saturating_sub(st.blocks_free()) * frag;
        let available = st.blocks_available() * frag;
        Ok(Usage {
            used,
            usable: used.saturating_add(available),
        })
    }
}

/// The `[triggers.resource_spike]` thresholds the options ask for, given the memory
/// and disk use now (pure: the caller reads the host).
pub fn relative_thresholds(
    opts: &SpawnOptions,
    memory: Option<Usage>,
    disk: Option<Usage>,
) -> Result<toml::Table, String> {
    let mut spike = toml::Table::new();
    let mib = |m: u64| m.saturating_mul(1 << 20);
    if let Some(above) = opts.memory_threshold_above_use_mib {
        let p = memory
            .and_then(|u| u.percent_above(mib(above)))
            .ok_or("cannot read the host's memory use")?;
        spike.insert("memory_percent".into(), toml::Value::Float(p));
    }
    if let Some(above) = opts.disk_threshold_above_use_mib {
        let p = disk
            .and_then(|u| u.percent_above(mib(above)))
            .ok_or("cannot read the state directory's disk use")?;
        spike.insert("disk_percent".into(), toml::Value::Float(p));
    }
    let mut out = toml::Table::new();
    if !spike.is_empty() {
        let mut triggers = toml::Table::new();
        triggers.insert("resource_spike".into(), toml::Value::Table(spike));
        out.insert("triggers".into(), toml::Value::Table(triggers));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_sit_the_asked_mib_above_the_use_now() {
        let gib = 1u64 << 30;
        let opts = SpawnOptions {
            memory_threshold_above_use_mib: Some(1024),
            disk_threshold_above_use_mib: Some(2048),
            ..SpawnOptions::default()
        };
        let mem = Usage {
            used: 2 * gib,
            usable: 16 * gib,
        };
        let disk = Usage {
            used: 10 * gib,
            usable: 100 * gib,
        };
        let t = relative_thresholds(&opts, Some(mem), Some(disk)).expect("readings");
        let spike = &t["triggers"]["resource_spike"];
        assert_eq!(spike["memory_percent"].as_float(), Some(18.75));
        assert_eq!(spike["disk_percent"].as_float(), Some(12.0));
    }

    #[test]
    fn no_options_no_overrides_and_missing_readings_are_errors() {
        let none = relative_thresholds(&SpawnOptions::default(), None, None).expect("nothing");
        assert!(none.is_empty());
        let opts = SpawnOptions {
            memory_threshold_above_use_mib: Some(1),
            ..SpawnOptions::default()
        };
        assert!(relative_thresholds(&opts, None, None).is_err());
    }

    #[test]
    fn a_threshold_never_reaches_100_percent() {
        let u = Usage {
            used: 90,
            usable: 100,
        };
        assert_eq!(u.percent_above(1_000), Some(99.99));
        assert_eq!(Usage { used: 0, usable: 0 }.percent_above(1), None);
    }

    #[test]
    fn the_host_can_be_read() {
        let m = Usage::memory().expect("meminfo");
        assert!(m.used <= m.usable && m.usable > 0);
        let d = Usage::disk(Path::new("/")).expect("statvfs");
        assert!(d.used <= d.usable);
    }
}
