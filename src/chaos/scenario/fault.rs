//! Faults and their timing: what a scenario injects, and when.
//!
//! How they are written in YAML, and checked, is in `raw_fault`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::raw_fault::{RawFault, RawFaultOut, RawStep};

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
    /// Uploads that never finish: `connections` connections to serve's HTTP port, each
    /// sending a POST to `path` that announces a 100-byte body and sends 2 bytes, held
    /// for the fault's duration.
    StallUploads {
        /// How many.
        connections: usize,
        /// The path posted to.
        path: String,
    },
    /// `connections` idle TCP connections to serve's HTTP port, held for the fault's
    /// duration (each takes one of serve's file descriptors once accepted).
    IdleConnections {
        /// How many.
        connections: usize,
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
            FaultKind::StallUploads { connections, .. } => {
                format!("stall_uploads({connections} connections)")
            }
            FaultKind::IdleConnections { connections } => {
                format!("idle_connections({connections})")
            }
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

/// The fault kinds, for messages.
pub const FAULT_KINDS: &str = "kill_kernel, panic_kernel, hang_kernel, spin_kernel, error_kernel, \
sigkill, sigstop, corrupt, cpu_siege, memory_siege, disk_siege, occupy_port, error_burst, \
latency, kill_switch, stall_uploads, idle_connections";
