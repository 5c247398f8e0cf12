//! The supervisor vocabulary: strategies, restart types, intensity, backoff, child
//! specifications, the supervisor's mailbox type and its errors.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::msg::SupervisorError;
use crate::kernel::{KernelSpec, KernelState};

/// Which siblings are restarted with a failed child (OTP's strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// Every child: all are stopped (reverse start order) and started again.
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

/// When a child is restarted (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartType {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal exit.
    Transient,
    /// Never, not even when a sibling's failure takes it down.
    Temporary,
}

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Graceful stop, then kill after this long.
    Timeout(#[serde(with = "humantime_serde")] Duration),
    /// Kill at once, no grace.
    BrutalKill,
    /// Graceful stop, wait as long as it takes (for nested supervisors).
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

/// Restart intensity: at most `max_restarts` within any `max_window`; past it the
/// supervisor stops its children and fails, escalating to its parent. `max_window` must
/// be above zero (OTP rejects a zero period); `max_restarts = 0` allows no restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intensity {
    /// Restarts allowed in the window (OTP `intensity`).
    pub max_restarts: u32,
    /// The sliding window (OTP `period`).
    #[serde(with = "humantime_serde")]
    pub max_window: Duration,
}

impl Default for Intensity {
    /// OTP's defaults: 1 restart in 5 seconds.
    fn default() -> Self {
        Intensity {
            max_restarts: 1,
            max_window: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff between restarts of the same child (Akka's BackoffSupervisor).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart after a quiet period (zero: immediate).
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// Upper bound of the delay.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Growth factor per consecutive restart.
    pub multiplier: f64,
    /// Random jitter as a fraction of the delay (0.2 = up to +20%).
    pub jitter: f64,
    /// A child that stays up this long has its backoff reset.
    #[serde(with = "humantime_serde")]
    pub reset_after: Duration,
}

/// The seed's restart-manager preset, per child: at most `max_attempts` restarts within
/// `cooldown`; past it the child is left down, `kernel.restart.max_attempts` is
/// published and an alert raised. Unlike [`Intensity`] it does not escalate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptLimit {
    /// Restarts allowed within the cooldown.
    pub max_attempts: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for AttemptLimit {
    /// The seed: 3 attempts, 30 s cooldown.
    fn default() -> Self {
        AttemptLimit {
            max_attempts: 3,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// When a supervisor ends on its own because its significant children ended (OTP 24's
/// `auto_shutdown`). Only an exit of a significant child by itself counts: a child
/// stopped by `terminate_child` or by a sibling's restart does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never (the default); no child may be significant.
    #[default]
    Never,
    /// When any significant child exits and is not restarted.
    AnySignificant,
    /// When the last running significant child exits and is not restarted.
    AllSignificant,
}

/// What a kernel's start came to (OTP: `{ok, Pid}` or `ignore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It runs.
    Running,
    /// Its start declined ([`crate::kernel::KernelError::Ignore`]): it does not run; a
    /// non-temporary child keeps its spec (state `stopped`, reason `ignored`) and can be
    /// restarted with `restart_child`, a temporary one is forgotten.
    Ignored,
}

/// What a child is.
#[derive(Debug, Clone)]
pub enum ChildKind {
    /// A kernel.
    Kernel(KernelSpec),
    /// A nested supervisor.
    Supervisor(SupervisorSpec),
}

/// One child of a supervisor.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Unique among its siblings; for kernels, the kernel's name.
    pub id: String,
    /// When it is restarted.
    pub restart: RestartType,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// Optional backoff between its restarts.
    pub backoff: Option<Backoff>,
    /// Optional per-child attempt limit (the restart-manager preset).
    pub attempts: Option<AttemptLimit>,
    /// A significant child's own exit can end its supervisor (see [`AutoShutdown`]);
    /// only `transient` and `temporary` children may be significant.
    pub significant: bool,
    /// What it is.
    pub kind: ChildKind,
}

impl ChildSpec {
    /// A permanent kernel child with the default shutdown.
    pub fn kernel(spec: KernelSpec) -> ChildSpec {
        ChildSpec {
            id: spec.name.clone(),
            restart: RestartType::Permanent,
            shutdown: Shutdown::default(),
            backoff: None,
            attempts: None,
            significant: false,
            kind: ChildKind::Kernel(spec),
        }
    }

    /// A permanent supervisor child; supervisors get `Shutdown::Infinity`, as in OTP.
    pub fn supervisor(spec: SupervisorSpec) -> ChildSpec {
        ChildSpec {
            id: spec.name.clone(),
            restart: RestartType::Permanent,
            shutdown: Shutdown::Infinity,
            backoff: None,
            attempts: None,
            significant: false,
            kind: ChildKind::Supervisor(spec),
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, r: RestartType) -> ChildSpec {
        self.restart = r;
        self
    }

    /// Sets the shutdown.
    pub fn shutdown(mut self, s: Shutdown) -> ChildSpec {
        self.shutdown = s;
        self
    }

    /// Sets a backoff.
    pub fn backoff(mut self, b: Backoff) -> ChildSpec {
        self.backoff = Some(b);
        self
    }

    /// Sets an attempt limit.
    pub fn attempts(mut self, a: AttemptLimit) -> ChildSpec {
        self.attempts = Some(a);
        self
    }

    /// Marks the child significant (see [`AutoShutdown`]).
    pub fn significant(mut self, yes: bool) -> ChildSpec {
        self.significant = yes;
        self
    }

    /// Checks what OTP checks of a child spec under a supervisor with `auto_shutdown`.
    pub fn validate(&self, auto_shutdown: AutoShutdown) -> Result<(), SupervisorError> {
        let invalid = |reason: String| SupervisorError::InvalidSpec {
            name: self.id.clone(),
            reason,
        };
        if self.id.is_empty() {
            return Err(invalid("a child needs a non-empty id".to_owned()));
        }
        if self.significant && self.restart == RestartType::Permanent {
            return Err(invalid(
                "a permanent child cannot be significant; make it transient or temporary"
                    .to_owned(),
            ));
        }
        if self.significant && auto_shutdown == AutoShutdown::Never {
            return Err(invalid(
                "a significant child needs auto_shutdown any_significant or all_significant on its supervisor"
                    .to_owned(),
            ));
        }
        if let ChildKind::Supervisor(s) = &self.kind {
            s.validate()?;
        }
        Ok(())
    }
}

/// A supervisor: its strategy, intensity and children (in start order).
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Unique name in the tree.
    pub name: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Restart intensity.
    pub intensity: Intensity,
    /// Children, in start order.
    pub children: Vec<ChildSpec>,
    /// For a dynamic supervisor: the bound on children added at run time. A dynamic
    /// supervisor stops its children concurrently (OTP's `simple_one_for_one`).
    pub max_children: Option<usize>,
    /// Whether it ends when its significant children end.
    pub auto_shutdown: AutoShutdown,
}

impl SupervisorSpec {
    /// A supervisor with OTP's default intensity and no children.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            name: name.into(),
            strategy,
            intensity: Intensity::default(),
            children: Vec::new(),
            max_children: None,
            auto_shutdown: AutoShutdown::Never,
        }
    }

    /// Sets the intensity.
    pub fn intensity(mut self, max_restarts: u32, max_window: Duration) -> SupervisorSpec {
        self.intensity = Intensity {
            max_restarts,
            max_window,
        };
        self
    }

    /// Adds a child at the end of the start order.
    pub fn child(mut self, c: ChildSpec) -> SupervisorSpec {
        self.children.push(c);
        self
    }

    /// Makes this a dynamic supervisor bounded to `max` children.
    pub fn max_children(mut self, max: usize) -> SupervisorSpec {
        self.max_children = Some(max);
        self
    }

    /// Sets when the supervisor ends with its significant children.
    pub fn auto_shutdown(mut self, a: AutoShutdown) -> SupervisorSpec {
        self.auto_shutdown = a;
        self
    }

    /// Checks the spec as OTP does at start: a period above zero, and valid children
    /// (significance, nested supervisors).
    pub fn validate(&self) -> Result<(), SupervisorError> {
        if self.intensity.max_window.is_zero() {
            return Err(SupervisorError::InvalidSpec {
                name: self.name.clone(),
                reason: "max_window must be above zero (e.g. 5s); to allow no restart at all, set max_restarts = 0".to_owned(),
            });
        }
        self.children
            .iter()
            .try_for_each(|c| c.validate(self.auto_shutdown))
    }
}

/// One child as introspection shows it (OTP's `which_children`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// `kernel` or `supervisor`.
    pub kind: &'static str,
    /// Its restart type.
    pub restart: RestartType,
    /// Its state.
    pub state: KernelState,
    /// Restarts of this child.
    pub restarts: u64,
    /// The reason of its last exit.
    pub last_reason: Option<String>,
}

/// OTP's `count_children`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// All children.
    pub specs: usize,
    /// Children running.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are kernels.
    pub workers: usize,
}
