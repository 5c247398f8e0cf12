//! How a kernel is to be run: its name, isolation, heartbeat timing and factory.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api::Kernel;

/// Where a kernel runs, and so how a hang can be ended (DESIGN.md, "Isolation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A tokio task: cheapest; a hang is ended at the next await, a CPU spin is not.
    #[default]
    Task,
    /// Its own OS thread and runtime: a stuck thread is abandoned and counted.
    Thread,
    /// A child process (`kind = "exec"`): a hang is ended by SIGKILL of its group.
    Process,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isolation::Task => "task",
            Isolation::Thread => "thread",
            Isolation::Process => "process",
        })
    }
}

/// Makes a fresh kernel value for every (re)start.
pub type KernelFactory = Arc<dyn Fn() -> Box<dyn Kernel> + Send + Sync>;

/// Everything needed to run one kernel.
#[derive(Clone)]
pub struct KernelSpec {
    /// Unique name in the tree.
    pub name: String,
    /// A critical kernel gets the short heartbeat timeout and the critical triggers.
    pub critical: bool,
    /// Where it runs.
    pub isolation: Isolation,
    /// How often its loop must prove it is alive.
    pub heartbeat_interval: Duration,
    /// How old its heartbeat may get before it is declared hung.
    pub heartbeat_timeout: Duration,
    /// Whether a panic may be repaired in place (same actor, same mailbox) instead of a
    /// full respawn. Only honoured where the supervisor's strategy allows it.
    pub restart_in_place: bool,
    /// The user marked it as running untrusted code (`sandbox = true`): a crash is a
    /// `sandbox_failure`, and quarantining it is allowed. Default false.
    pub sandbox: bool,
    /// How long [`super::Kernel::start`] may take; past it the start fails (and the
    /// kernel is dropped), so that a supervisor is never held by one start for longer.
    pub start_timeout: Duration,
    /// Makes the kernel value.
    pub factory: KernelFactory,
}

/// The default [`KernelSpec::start_timeout`].
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(15);

impl KernelSpec {
    /// A task-isolated, non-critical kernel with the seed's heartbeat defaults
    /// (interval 5 s, timeout 60 s).
    pub fn new(name: impl Into<String>, factory: KernelFactory) -> KernelSpec {
        KernelSpec {
            name: name.into(),
            critical: false,
            isolation: Isolation::Task,
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            restart_in_place: false,
            sandbox: false,
            start_timeout: DEFAULT_START_TIMEOUT,
            factory,
        }
    }

    /// Marks the kernel critical and applies the critical heartbeat timeout (5 s, with a
    /// 1 s interval) unless set otherwise afterwards.
    pub fn critical(mut self) -> KernelSpec {
        self.critical = true;
        self.heartbeat_interval = Duration::from_secs(1);
        self.heartbeat_timeout = Duration::from_secs(5);
        self
    }

    /// Sets the isolation.
    pub fn isolation(mut self, isolation: Isolation) -> KernelSpec {
        self.isolation = isolation;
        self
    }

    /// Sets heartbeat interval and timeout.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> KernelSpec {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Allows restart in place.
    pub fn restart_in_place(mut self, yes: bool) -> KernelSpec {
        self.restart_in_place = yes;
        self
    }

    /// Sets the start timeout.
    pub fn start_timeout(mut self, d: Duration) -> KernelSpec {
        self.start_timeout = d;
        self
    }

    /// Marks the kernel as a sandbox (untrusted code) or not.
    pub fn sandbox(mut self, yes: bool) -> KernelSpec {
        self.sandbox = yes;
        self
    }
}

impl fmt::Debug for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSpec")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("isolation", &self.isolation)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("restart_in_place", &self.restart_in_place)
            .field("sandbox", &self.sandbox)
            .field("start_timeout", &self.start_timeout)
            .finish_non_exhaustive()
    }
}
