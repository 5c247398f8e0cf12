//! `resource_spike`: CPU and memory of serve's process tree (serve and its exec kernels'
//! processes, [`super::proctree`]) by default, of the whole host with `scope = "host"`,
//! or of one process with `process`; and disk use of the state directory's file system
//! (statvfs); each held above its threshold for its window.
//!
//! CPU pressure whose playbook is `shed_load` while no running kernel can shed load is
//! published as informational: real, but nothing Grace runs can relieve it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::process::{ProcessProbe, ProcessReading, ProcessTarget};
use super::proctree::{TreeProbe, TreeReading};
use crate::incident::Severity;
use crate::kernel::{Control, KernelContext};
use crate::trigger::config::{ResourceScope, ResourceSpikeConfig};
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

/// Whether some running, non-critical kernel can shed load now (what the `shed_load`
/// action acts on): one whose stats report `shedding`, as a kernel implementing
/// [`crate::kernel::Kernel::shed_load`] does. Trigger kernels are not asked.
pub async fn can_shed_load(ctx: &KernelContext) -> bool {
    let reg = &ctx.system.registry;
    let asks = reg
        .statuses()
        .into_iter()
        .filter(|s| {
            !s.critical && s.state().is_up() && !s.name.starts_with(crate::trigger::KERNEL_PREFIX)
        })
        .map(|s| async move {
            reg.control(&s.name, Control::Stats, Duration::from_millis(500))
                .await
                .is_ok_and(|v| v.get("shedding").is_some())
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .any(|yes| yes)
}

/// `resource_spike`: CPU > 85% (`shed_load`), memory > 80% (`restart_service`), disk >
/// 90% (`resource_cleanup`); component `grace` (serve's process tree, the default),
/// `host` (`scope = "host"`, and always for disk) or the watched process.
pub struct ResourceSpike {
    cfg: ResourceSpikeConfig,
    sys: sysinfo::System,
    primed: bool,
    last: HostReading,
    process: Option<ProcessProbe>,
    last_process: Option<ProcessReading>,
    tree: TreeProbe,
    last_tree: Option<TreeReading>,
}

impl ResourceSpike {
    /// The trigger with its settings, watching this process's tree.
    pub fn new(cfg: ResourceSpikeConfig) -> ResourceSpike {
        ResourceSpike {
            cfg,
            sys: sysinfo::System::new(),
            primed: false,
            last: HostReading::default(),
            process: None,
            last_process: None,
            tree: TreeProbe::new(std::process::id()),
            last_tree: None,
        }
    }

    /// Watches the tree under `pid` instead of this process's (for an embedder whose
    /// serve process is another one).
    pub fn tree_root(mut self, pid: u32) -> ResourceSpike {
        self.tree = TreeProbe::new(pid);
        self
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
        // running: no pressure), else of serve's tree, or of the host when asked.
        let (component, cpu, mem, cpu_details, mem_details) = match (&mut self.process, c.scope) {
            (Some(probe), _) => {
                let reading = probe.read();
                self.last_process = reading;
                let component = probe.target().component();
                match reading {
                    Some(p) => (
                        component,
                        p.cpu,
                        memory_value(c, p.rss_bytes, p.total_bytes),
                        json!({ "pid": p.pid }),
                        json!({ "pid": p.pid, "rss_bytes": p.rss_bytes, "total_bytes": p.total_bytes }),
                    ),
                    None => (component, None, None, Value::Null, Value::Null),
                }
            }
            (None, ResourceScope::Tree) => {
                let t = self.tree.read();
                let scope = json!({
                    "scope": "tree",
                    "root_pid": t.root,
                    "processes": t.pids.len(),
                });
                let mut cpu_details = scope.clone();
                let mut mem_details = scope;
                if let Value::Object(d) = &mut cpu_details {
                    d.insert("cores_percent".to_owned(), json!(t.cpu_cores));
                }
                if let Value::Object(d) = &mut mem_details {
                    d.insert("rss_bytes".to_owned(), json!(t.rss_bytes));
                    d.insert("total_bytes".to_owned(), json!(t.total_bytes));
                }
                let out = (
                    "grace".to_owned(),
                    t.cpu,
                    memory_value(c, t.rss_bytes, t.total_bytes),
                    cpu_details,
                    mem_details,
                );
                self.last_tree = Some(t);
                out
            }
            (None, ResourceScope::Host) => (
                "host".to_owned(),
                r.cpu,
                memory_value(c, self.sys.used_memory(), self.sys.total_memory()),
                json!({ "scope": "host" }),
                json!({
                    "scope": "host",
                    "used_bytes": self.sys.used_memory(),
                    "total_bytes": self.sys.total_memory(),
                }),
            ),
        };
        let disk = json!({ "path": path.display().to_string() });
        let mut cpu = self.finding(
            &component,
            cpu.map(|v| (v, c.cpu_percent, Unit::Percent)),
            c.cpu_for,
            "cpu_pressure",
            "CPU",
            &c.cpu_playbook,
            cpu_details,
        );
        if let Some(Finding::Holds(a)) = &mut cpu {
            if a.draft.playbook.as_deref() == Some("shed_load") && !can_shed_load(ctx).await {
                *a = a.clone().informational(
                    "no running non-critical kernel can shed load, so shed_load has nothing \
                     to act on: nothing Grace runs can relieve this CPU pressure",
                );
            }
        }
        Ok([
            cpu,
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
            "scope": match self.cfg.scope {
                ResourceScope::Tree => "tree",
                ResourceScope::Host => "host",
            },
            "tree": self.last_tree.as_ref().map(|t| json!({
                "root_pid": t.root,
                "processes": t.pids.len(),
                "cpu_percent": t.cpu,
                "cores_percent": t.cpu_cores,
                "rss_bytes": t.rss_bytes,
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
