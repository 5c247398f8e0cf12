//! Faults as written in YAML, and their checks: what turns them into [`Fault`]s and
//! [`Step`]s, and back (the report shows faults as they were written).
//!
//! In YAML a fault is a mapping with `fault: KIND` and the parameters of that kind; a
//! `parallel:` list injects several faults at the same moment. Every parameter a kind
//! does not use is rejected, with the line of the fault.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::fault::{
    CorruptMode, Fault, FaultKind, KernelAction, Process, Step, SwitchAction, FAULT_KINDS,
};

/// A fault as written: every parameter optional, checked against its kind.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    fault: String,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repeat: Option<u32>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    every: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<CorruptMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<SwitchAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

/// The serialised form of a fault (the report shows faults as they were written).
pub(super) type RawFaultOut = RawFault;

/// The parameters each kind takes, besides `fault`, `duration`, `repeat`, `every`.
fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "kill_kernel" | "panic_kernel" | "hang_kernel" | "error_kernel" | "spin_kernel" => {
            &["kernel"]
        }
        "sigkill" | "sigstop" => &["process"],
        "corrupt" => &["file", "mode", "bytes"],
        "cpu_siege" => &["threads"],
        "memory_siege" => &["mib", "level", "max_mib"],
        "disk_siege" => &["dir", "mib", "level", "max_mib"],
        "occupy_port" => &[],
        "error_burst" => &["count"],
        "latency" => &["ms"],
        "kill_switch" => &["action"],
        "stall_uploads" => &["connections", "path"],
        "idle_connections" => &["connections"],
        _ => return None,
    })
}

impl RawFault {
    fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                v.push(name);
            }
        };
        add(self.kernel.is_some(), "kernel");
        add(self.process.is_some(), "process");
        add(self.file.is_some(), "file");
        add(self.mode.is_some(), "mode");
        add(self.bytes.is_some(), "bytes");
        add(self.threads.is_some(), "threads");
        add(self.mib.is_some(), "mib");
        add(self.dir.is_some(), "dir");
        add(self.level.is_some(), "level");
        add(self.max_mib.is_some(), "max_mib");
        add(self.count.is_some(), "count");
        add(self.ms.is_some(), "ms");
        add(self.action.is_some(), "action");
        add(self.connections.is_some(), "connections");
        add(self.path.is_some(), "path");
        v
    }
}

fn need<T: Clone>(v: &Option<T>, kind: &str, name: &str, example: &str) -> Result<T, String> {
    v.clone()
        .ok_or_else(|| format!("fault {kind} needs `{name}` (for example `{name}: {example}`)"))
}

impl TryFrom<RawFault> for Fault {
    type Error = String;

    fn try_from(r: RawFault) -> Result<Fault, String> {
        let kind = r.fault.as_str();
        let allowed = allowed(kind)
            .ok_or_else(|| format!("unknown fault {kind:?}; the faults are {FAULT_KINDS}"))?;
        if let Some(extra) = r.given().into_iter().find(|g| !allowed.contains(g)) {
            return Err(format!(
                "fault {kind} does not take `{extra}` (it takes: {})",
                if allowed.is_empty() {
                    "no parameters".to_owned()
                } else {
                    allowed.join(", ")
                }
            ));
        }
        let needs_duration = matches!(
            kind,
            "spin_kernel"
                | "sigstop"
                | "cpu_siege"
                | "memory_siege"
                | "disk_siege"
                | "latency"
                | "stall_uploads"
                | "idle_connections"
        );
        if needs_duration && r.duration.is_none() {
            return Err(format!(
                "fault {kind} needs `duration` (how long it lasts, e.g. `duration: 5s`)"
            ));
        }
        let kernel = |action| -> Result<FaultKind, String> {
            Ok(FaultKind::Kernel {
                kernel: need(&r.kernel, kind, "kernel", "worker_pool")?,
                action,
            })
        };
        let fk = match kind {
            "kill_kernel" => kernel(KernelAction::Kill)?,
            "panic_kernel" => kernel(KernelAction::Panic)?,
            "hang_kernel" => kernel(KernelAction::Hang)?,
            "spin_kernel" => kernel(KernelAction::Spin)?,
            "error_kernel" => kernel(KernelAction::Error)?,
            "sigkill" => FaultKind::Sigkill {
                process: need(&r.process, kind, "process", "serve")?,
            },
            "sigstop" => FaultKind::Sigstop {
                process: need(&r.process, kind, "process", "serve")?,
            },
            "corrupt" => FaultKind::Corrupt {
                file: need(&r.file, kind, "file", "\"snapshots/model/*\"")?,
                mode: r.mode.unwrap_or_default(),
                bytes: r.bytes.unwrap_or(16).max(1),
            },
            "cpu_siege" => FaultKind::CpuSiege {
                threads: r.threads.unwrap_or_else(default_threads).max(1),
            },
            "memory_siege" => {
                if r.mib.is_some() == r.level.is_some() {
                    return Err(
                        "fault memory_siege needs either `mib` (how much to allocate) or `level` (the host's memory use to reach, percent)"
                            .to_owned(),
                    );
                }
                check_level(kind, r.level)?;
                FaultKind::MemorySiege {
                    mib: r.mib,
                    level: r.level,
                    max_mib: r.max_mib.or(r.mib).unwrap_or(2048),
                }
            }
            "disk_siege" => {
                if r.mib.is_some() == r.level.is_some() {
                    return Err(
                        "fault disk_siege needs either `mib` (the size of the file) or `level` (the file system's use to reach, percent)"
                            .to_owned(),
                    );
                }
                check_level(kind, r.level)?;
                FaultKind::DiskSiege {
                    dir: r.dir.clone(),
                    mib: r.mib,
                    level: r.level,
                    max_mib: r.max_mib.or(r.mib).unwrap_or(512),
                }
            }
            "occupy_port" => FaultKind::OccupyPort,
            "error_burst" => FaultKind::ErrorBurst {
                count: need(&r.count, kind, "count", "50")?,
            },
            "latency" => FaultKind::Latency {
                ms: need(&r.ms, kind, "ms", "1500")?,
            },
            "kill_switch" => FaultKind::KillSwitch {
                action: need(&r.action, kind, "action", "stop")?,
            },
            "stall_uploads" => FaultKind::StallUploads {
                connections: connections(kind, r.connections)?,
                path: match &r.path {
                    Some(p) if !p.starts_with('/') => {
                        return Err(format!(
                            "fault stall_uploads: path {p:?} must start with `/` (for example `path: /api/chaos/errors`)"
                        ))
                    }
                    Some(p) => p.clone(),
                    None => DEFAULT_STALL_PATH.to_owned(),
                },
            },
            "idle_connections" => FaultKind::IdleConnections {
                connections: connections(kind, r.connections)?,
            },
            _ => {
                return Err(format!(
                    "unknown fault {kind:?}; the faults are {FAULT_KINDS}"
                ))
            }
        };
        let repeat = r.repeat.unwrap_or(1);
        if repeat == 0 {
            return Err("`repeat` must be at least 1".to_owned());
        }
        if repeat > 1 && r.every.is_none() {
            return Err(format!(
                "fault {kind} repeats {repeat} times: give `every` (the time between injections, e.g. `every: 500ms`)"
            ));
        }
        Ok(Fault {
            kind: fk,
            duration: r.duration,
            repeat,
            every: r.every.unwrap_or_default(),
        })
    }
}

impl From<Fault> for RawFault {
    fn from(f: Fault) -> RawFault {
        let mut r = RawFault {
            duration: f.duration,
            repeat: (f.repeat != 1).then_some(f.repeat),
            every: (f.repeat != 1).then_some(f.every),
            ..RawFault::default()
        };
        match f.kind {
            FaultKind::Kernel { kernel, action } => {
                r.fault = format!("{}_kernel", action.as_str());
                r.kernel = Some(kernel);
            }
            FaultKind::Sigkill { process } => {
                r.fault = "sigkill".into();
                r.process = Some(process);
            }
            FaultKind::Sigstop { process } => {
                r.fault = "sigstop".into();
                r.process = Some(process);
            }
            FaultKind::Corrupt { file, mode, bytes } => {
                r.fault = "corrupt".into();
                r.file = Some(file);
                r.mode = Some(mode);
                r.bytes = Some(bytes);
            }
            FaultKind::CpuSiege { threads } => {
                r.fault = "cpu_siege".into();
                r.threads = Some(threads);
            }
            FaultKind::MemorySiege {
                mib,
                level,
                max_mib,
            } => {
                r.fault = "memory_siege".into();
                r.mib = mib;
                r.level = level;
                r.max_mib = Some(max_mib);
            }
            FaultKind::DiskSiege {
                dir,
                mib,
                level,
                max_mib,
            } => {
                r.fault = "disk_siege".into();
                r.dir = dir;
                r.mib = mib;
                r.level = level;
                r.max_mib = Some(max_mib);
            }
            FaultKind::OccupyPort => r.fault = "occupy_port".into(),
            FaultKind::ErrorBurst { count } => {
                r.fault = "error_burst".into();
                r.count = Some(count);
            }
            FaultKind::Latency { ms } => {
                r.fault = "latency".into();
                r.ms = Some(ms);
            }
            FaultKind::KillSwitch { action } => {
                r.fault = "kill_switch".into();
                r.action = Some(action);
            }
            FaultKind::StallUploads { connections, path } => {
                r.fault = "stall_uploads".into();
                r.connections = Some(connections);
                r.path = Some(path);
            }
            FaultKind::IdleConnections { connections } => {
                r.fault = "idle_connections".into();
                r.connections = Some(connections);
            }
        }
        r
    }
}

/// Where stalled uploads post by default: an endpoint that reads its whole body
/// before it acts (and never acts, since the body never comes).
pub(super) const DEFAULT_STALL_PATH: &str = "/api/chaos/errors";

/// The most connections a fault may hold (the harness's own descriptors are finite).
const MAX_CONNECTIONS: usize = 4096;

fn connections(kind: &str, n: Option<usize>) -> Result<usize, String> {
    match n {
        None => Err(format!(
            "fault {kind} needs `connections` (how many, for example `connections: 10`)"
        )),
        Some(n) if n == 0 || n > MAX_CONNECTIONS => Err(format!(
            "fault {kind}: connections {n} is out of range: give 1 to {MAX_CONNECTIONS}"
        )),
        Some(n) => Ok(n),
    }
}

fn check_level(kind: &str, level: Option<f64>) -> Result<(), String> {
    match level {
        Some(l) if !(1.0..=99.0).contains(&l) => Err(format!(
            "{kind} level {l} is out of range: give a percentage between 1 and 99"
        )),
        _ => Ok(()),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// A step as written: a fault with `at`, or `parallel:` faults with `at`.
#[derive(Debug, Deserialize)]
pub(super) struct RawStep {
    #[serde(default, with = "humantime_serde")]
    at: Option<Duration>,
    #[serde(default)]
    parallel: Option<Vec<Fault>>,
    #[serde(flatten)]
    single: Option<serde_yaml_ng::Mapping>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(r: RawStep) -> Result<Step, String> {
        let at = r.at.unwrap_or_default();
        let single = r.single.filter(|m| !m.is_empty());
        match (r.parallel, single) {
            (Some(_), Some(_)) => Err(
                "a step is either one fault (`fault: ...`) or a `parallel:` list, not both"
                    .to_owned(),
            ),
            (Some(list), None) if list.is_empty() => {
                Err("`parallel:` needs at least one fault".to_owned())
            }
            (Some(list), None) => Ok(Step { at, faults: list }),
            (None, Some(m)) => {
                let f: Fault = serde_yaml_ng::from_value(serde_yaml_ng::Value::Mapping(m))
                    .map_err(|e| e.to_string())?;
                Ok(Step {
                    at,
                    faults: vec![f],
                })
            }
            (None, None) => Err(format!(
                "a step needs `fault: KIND` or `parallel:`; the faults are {FAULT_KINDS}"
            )),
        }
    }
}
