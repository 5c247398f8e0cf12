//! `resource_spike`: host CPU (sysinfo), memory (sysinfo) and disk use of the state
//! directory's file system (statvfs), each held above its threshold for its window.
//! With `process` set, CPU and memory are those of one process instead of the host's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::process::{ProcessProbe, ProcessReading, ProcessTarget};
use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::config::ResourceSpikeConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// One reading of the host, in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostReading {
    /// CPU use over the last interval (None on the first reading).
    pub cpu: Option<f64>,
    /// Memory in use.
    pub memory: Option<f64>,
    /// Disk in use.
    pub disk: Option<f64>,
}

/// Disk use of the file system holding `path`, percent, as `df` computes it
/// (used / (used + available to unprivileged users)).
pub fn disk_percent(path: &Path) -> std::io::Result<f64> {
    let s = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let used = s.blocks().saturating_sub(s.blocks_free()) as f64;
    let avail = s.blocks_available() as f64;
    Ok(if used + avail > 0.0 {
        used * 100.0 / (used + avail)
    } else {
        0.0
    })
}

/// A memory figure against its threshold: percent, or MiB when `memory_mib` is set.
fn memory_value(cfg: &ResourceSpikeConfig, used: u64, total: u64) -> Option<(f64, f64, Unit)> {
    match cfg.memory_mib {
        Some(mib) => Some((used as f64 / MIB, mib as f64, Unit::Mib)),
        None => (total > 0).then(|| {
            let p = used as f64 * 100.0 / total as f64;
            (p, cfg.memory_percent, Unit::Percent)
        }),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Percent,
    Mib,
}

/// `resource_spike`: CPU > 85% (`shed_load`), memory > 80% (`restart_service`), disk >
/// 90% (`resource_cleanup`), component `host` (or the watched process).
pub struct ResourceSpike {
    cfg: ResourceSpikeConfig,
    sys: sysinfo::System,
    primed: bool,
    last: HostReading,
    process: Option<ProcessProbe>,
    last_process: Option<ProcessReading>,
}

impl ResourceSpike {
    /// The trigger with its settings.
    pub fn new(cfg: ResourceSpikeConfig) -> ResourceSpike {
        ResourceSpike {
            cfg,
            sys: sysinfo::System::new(),
            primed: false,
            last: HostReading::default(),
            process: None,
            last_process: None,
        }
    }

    fn read(&mut self, disk_path: &Path) -> HostReading {
        self.sys.refresh_cpu_usage();
        // The first CPU reading has nothing to compare with.
        let cpu = std::mem::replace(&mut self.primed, true)
            .then(|| f64::from(self.sys.global_cpu_usage()));
        self.sys.refresh_memory();
        let total = self.sys.total_memory();
        let memory = (total > 0).then(|| self.sys.used_memory() as f64 * 100.0 / total as f64);
        let disk = match disk_percent(disk_path) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(path = %disk_path.display(), error = %e, "resource_spike: cannot read disk use");
                None
            }
        };
        HostReading { cpu, memory, disk }
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        component: &str,
        value: Option<(f64, f64, Unit)>,
        hold: Option<Duration>,
        failure_mode: &str,
        what: &str,
        playbook: &str,
        extra: Value,
    ) -> Option<Finding> {
        let (v, threshold, unit) = value.filter(|(v, t, _)| *v > *t)?;
        let hold = hold.unwrap_or(self.cfg.hold_for);
        let (key, shown) = match unit {
            Unit::Percent => ("percent", format!("{v:.1}% is above {threshold:.1}%")),
            Unit::Mib => ("mib", format!("{v:.1} MiB is above {threshold:.1} MiB")),
        };
        let mut details = json!({
            "resource": what,
            key: v,
            format!("threshold_{key}"): threshold,
            "window_s": hold.as_secs_f64(),
        });
        if let (Value::Object(d), Value::Object(e)) = (&mut details, extra) {
            d.extend(e);
        }
        Some(Finding::Holds(
            Alert::new(
                Level::Incident,
                "resource_spike",
                component,
                failure_mode,
                Severity::High,
                Some(self.cfg.playbook.as_deref().unwrap_or(playbook)),
                format!("{component} {what} use {shown}"),
            )
            .details(details)
            .hold_for(hold),
        ))
    }
}

#[async_trait]
impl Trigger for ResourceSpike {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let root = ctx.system.paths.root();
        let path: PathBuf = self
            .cfg
            .disk_path
            .clone()
            .unwrap_or_else(|| root.to_path_buf());
        let r = self.read(&path);
        self.last = r;
        let c = &self.cfg;
        if self.process.is_none() {
            if let Some(p) = &c.process {
                self.process = Some(ProcessProbe::new(ProcessTarget::parse(p, root)));
            }
        }
        // CPU and memory: of the watched process when there is one (no process
        // running: no pressure), else of the host.
        let (component, cpu, mem, mem_details) = match &mut self.process {
            Some(probe) => {
                let reading = probe.read();
                self.last_process = reading;
                let component = probe.target().component();
                match reading {
                    Some(p) => (
                        component,
                        p.cpu,
                        memory_value(c, p.rss_bytes, p.total_bytes),
                        json!({ "pid": p.pid, "rss_bytes": p.rss_bytes, "total_bytes": p.total_bytes }),
                    ),
                    None => (component, None, None, Value::Null),
                }
            }
            None => (
                "host".to_owned(),
                r.cpu,
                memory_value(c, self.sys.used_memory(), self.sys.total_memory()),
                json!({
                    "used_bytes": self.sys.used_memory(),
                    "total_bytes": self.sys.total_memory(),
                }),
            ),
        };
        let cpu_details = match self.last_process.filter(|_| self.process.is_some()) {
            Some(p) => json!({ "pid": p.pid }),
            None => json!({}),
        };
        let disk = json!({ "path": path.display().to_string() });
        Ok([
            self.finding(
                &component,
                cpu.map(|v| (v, c.cpu_percent, Unit::Percent)),
                c.cpu_for,
                "cpu_pressure",
                "CPU",
                &c.cpu_playbook,
                cpu_details,
            ),
            self.finding(
                &component,
                mem,
                c.memory_for,
                "memory_pressure",
                "memory",
                &c.memory_playbook,
                mem_details,
            ),
            self.finding(
                "host",
                r.disk.map(|v| (v, c.disk_percent, Unit::Percent)),
                c.disk_for,
                "disk_pressure",
                "disk",
                &c.disk_playbook,
                disk,
            ),
        ]
        .into_iter()
        .flatten()
        .collect())
    }

    fn stats(&self) -> Value {
        json!({
            "cpu_percent": self.last.cpu,
            "memory_percent": self.last.memory,
            "disk_percent": self.last.disk,
            "process": self.last_process.map(|p| json!({
                "pid": p.pid,
                "cpu_percent": p.cpu,
                "rss_bytes": p.rss_bytes,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_use_of_a_real_file_system_is_a_percentage() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = disk_percent(d.path()).expect("statvfs");
        assert!((0.0..=100.0).contains(&p), "{p}");
        assert!(disk_percent(&d.path().join("missing")).is_err());
    }
}
