//! Faults and their timing: what a scenario injects, and when.
//!
//! In YAML a fault is a mapping with `fault: KIND` and the parameters of that kind; a
//! `parallel:` list injects several faults at the same moment. Every parameter a kind
//! does not use is rejected, with the line of the fault.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What a kernel fault asks the kernel to do (`POST /api/chaos/kernels/{name}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelAction {
    /// Kill the kernel's actor.
    Kill,
    /// Make the kernel panic.
    Panic,
    /// Make the kernel's message loop stop (no more heartbeats).
    Hang,
    /// Make the kernel spin on the CPU for a while.
    Spin,
    /// Make the kernel fail with an error.
    Error,
}

impl KernelAction {
    /// The path segment of the chaos endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelAction::Kill => "kill",
            KernelAction::Panic => "panic",
            KernelAction::Hang => "hang",
            KernelAction::Spin => "spin",
            KernelAction::Error => "error",
        }
    }
}

/// A process of the target instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// `grace serve` (pid from `serve.json`).
    Serve,
    /// `grace watch` (pid from `watchdog.pid`).
    Watchdog,
}

/// How a file is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorruptMode {
    /// Flip bits of `bytes` bytes at seeded random offsets.
    #[default]
    Flip,
    /// Cut the file to half its length.
    Truncate,
}

/// The kill switch commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchAction {
    /// `grace stop`: set the kill switch and stop serve.
    Stop,
    /// `grace start`: clear it and bring serve back.
    Start,
}

/// One kind of fault with its parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FaultKind {
    /// A chaos endpoint on a named kernel.
    Kernel {
        /// The kernel.
        kernel: String,
        /// What to do to it.
        action: KernelAction,
    },
    /// SIGKILL of a process.
    Sigkill {
        /// Which one.
        process: Process,
    },
    /// SIGSTOP of a process, SIGCONT after the fault's duration.
    Sigstop {
        /// Which one.
        process: Process,
    },
    /// Corrupt the newest file matching a glob (relative to the state directory).
    Corrupt {
        /// The glob.
        file: String,
        /// How.
        mode: CorruptMode,
        /// Bytes flipped (flip mode).
        bytes: usize,
    },
    /// Busy threads in the harness.
    CpuSiege {
        /// How many.
        threads: usize,
    },
    /// Memory allocated and touched by the harness: `mib`, or enough to bring the host
    /// to `level` percent used (at most `max_mib`).
    MemorySiege {
        /// How much, MiB.
        mib: Option<u64>,
        /// Target use of the host's memory, percent.
        level: Option<f64>,
        /// The most it may take, MiB.
        max_mib: u64,
    },
    /// A file that takes `mib`, or fills a file system up to `level` percent (at most
    /// `max_mib`).
    DiskSiege {
        /// Where the file goes (default: the state directory).
        dir: Option<PathBuf>,
        /// How much, MiB.
        mib: Option<u64>,
        /// Target use of the file system, percent.
        level: Option<f64>,
        /// The most the file may take, MiB.
        max_mib: u64,
    },
    /// Bind serve's port, then SIGKILL serve, so its restart finds the port taken.
    OccupyPort,
    /// `POST /api/chaos/errors`.
    ErrorBurst {
        /// Errors in the burst.
        count: u32,
    },
    /// `POST /api/chaos/latency`.
    Latency {
        /// Added latency per request, ms.
        ms: u64,
    },
    /// `grace stop` / `grace start`.
    KillSwitch {
        /// Which.
        action: SwitchAction,
    },
}

/// A fault with its timing inside its step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(try_from = "RawFault", into = "RawFaultOut")]
pub struct Fault {
    /// What is injected.
    pub kind: FaultKind,
    /// How long it lasts (sieges, SIGSTOP, latency, spin, a held port).
    pub duration: Option<Duration>,
    /// How many times it is injected (at least 1).
    pub repeat: u32,
    /// Time between repeats.
    pub every: Duration,
}

/// A moment of the scenario: one fault, or several injected at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    /// Offset from the start of injection.
    pub at: Duration,
    /// The faults (more than one for a `parallel` group).
    pub faults: Vec<Fault>,
}

impl FaultKind {
    /// A short label such as `kill_kernel(message_bus)`.
    pub fn label(&self) -> String {
        match self {
            FaultKind::Kernel { kernel, action } => format!("{}_kernel({kernel})", action.as_str()),
            FaultKind::Sigkill { process } => format!("sigkill({})", process_name(*process)),
            FaultKind::Sigstop { process } => format!("sigstop({})", process_name(*process)),
            FaultKind::Corrupt { file, .. } => format!("corrupt({file})"),
            FaultKind::CpuSiege { threads } => format!("cpu_siege({threads} threads)"),
            FaultKind::MemorySiege { mib: Some(mib), .. } => format!("memory_siege({mib} MiB)"),
            FaultKind::MemorySiege { level, .. } => {
                format!("memory_siege({}%)", level.unwrap_or_default())
            }
            FaultKind::DiskSiege { mib: Some(mib), .. } => format!("disk_siege({mib} MiB)"),
            FaultKind::DiskSiege { level, .. } => {
                format!("disk_siege({}%)", level.unwrap_or_default())
            }
            FaultKind::OccupyPort => "occupy_port".to_owned(),
            FaultKind::ErrorBurst { count } => format!("error_burst({count})"),
            FaultKind::Latency { ms } => format!("latency({ms} ms)"),
            FaultKind::KillSwitch { action } => match action {
                SwitchAction::Stop => "kill_switch(stop)".to_owned(),
                SwitchAction::Start => "kill_switch(start)".to_owned(),
            },
        }
    }

    /// The component incidents about this fault name, when the fault has one.
    pub fn component(&self) -> Option<&str> {
        match self {
            FaultKind::Kernel { kernel, .. } => Some(kernel),
            _ => None,
        }
    }

    /// Whether the system is expected to notice the fault (operator actions such as the
    /// kill switch are not failures to detect).
    pub fn detectable(&self) -> bool {
        !matches!(self, FaultKind::KillSwitch { .. })
    }
}

fn process_name(p: Process) -> &'static str {
    match p {
        Process::Serve => "serve",
        Process::Watchdog => "watchdog",
    }
}

/// A fault as written: every parameter optional, checked against its kind.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
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
}

/// The serialised form of a fault (the report shows faults as they were written).
type RawFaultOut = RawFault;

/// The fault kinds, for messages.
pub const FAULT_KINDS: &str = "kill_kernel, panic_kernel, hang_kernel, spin_kernel, error_kernel, \
sigkill, sigstop, corrupt, cpu_siege, memory_siege, disk_siege, occupy_port, error_burst, \
latency, kill_switch";

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
            "spin_kernel" | "sigstop" | "cpu_siege" | "memory_siege" | "disk_siege" | "latency"
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
        }
        r
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
struct RawStep {
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
