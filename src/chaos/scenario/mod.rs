//! Chaos scenarios: the YAML model, parsing with file and line in errors, and the
//! consistency checks that parsing alone cannot make.
//!
//! ```yaml
//! name: DIRT01
//! description: kill three critical kernels at once
//! seed: 1
//! config: { heartbeat: { critical_timeout: 1s } }   # merged into the spawned grace.toml
//! steady_state: [health_ok, all_kernels_running, no_open_incidents]
//! faults:
//!   - at: 0s
//!     parallel:
//!       - { fault: kill_kernel, kernel: message_bus }
//!       - { fault: kill_kernel, kernel: self_healing }
//! slo: { max_recovery: 120s }
//! abort: [{ probe: health_ok, failing_for: 60s }]
//! expect: [{ kernel_restarted: message_bus }]
//! ```

mod expect;
mod fault;
mod probe;
mod raw_fault;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use expect::{Expectation, IncidentMatch, INCIDENT_STATUSES};
pub use fault::{
    CorruptMode, Fault, FaultKind, KernelAction, Process, Step, SwitchAction, FAULT_KINDS,
};

pub use probe::{LoopbackAddr, LoopbackUrl, Probe};

use super::ChaosError;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (`DIRT01`); built-ins are looked up by it, regardless of case.
    pub name: String,
    /// What it does and what it expects.
    #[serde(default)]
    pub description: String,
    /// Seed of everything random (corrupted byte offsets).
    #[serde(default)]
    pub seed: u64,
    /// Overrides merged into the spawned instance's `grace.toml` (ignored with
    /// `--target`, whose configuration must already allow the faults).
    #[serde(default)]
    pub config: toml::Table,
    /// How `--spawn` starts the instance.
    #[serde(default)]
    pub spawn: SpawnOptions,
    /// Probes that must hold before injection and again after it (default:
    /// `health_ok`).
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub steady_state: Vec<Probe>,
    /// Probes that must hold before injection too, but not after it: what a fault
    /// acts on and the system is expected to leave changed (a sandbox that a playbook
    /// quarantines stays stopped).
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub before: Vec<Probe>,
    /// The faults, by offset.
    pub faults: Vec<Step>,
    /// The service level objective.
    pub slo: Slo,
    /// When to stop injecting and clean up.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub abort: Vec<AbortRule>,
    /// What the system must have done, besides coming back to its steady state.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub expect: Vec<Expectation>,
    /// How long the steady state may take to hold before injection (default 30 s).
    #[serde(default, with = "humantime_serde")]
    pub warmup: Option<Duration>,
    /// How long to observe after the last fault ends (default: twice `max_recovery`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How often the target is observed (default 50 ms).
    #[serde(default, with = "humantime_serde")]
    pub poll: Option<Duration>,
}

/// `spawn:` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnOptions {
    /// Start serve on a fixed free port instead of `--port 0` (for faults about the
    /// port itself: a restart must find the same port taken).
    #[serde(default)]
    pub fixed_port: bool,
    /// Set `resource_spike`'s memory threshold this many MiB above the host's memory
    /// use when the instance starts, so that a RAM siege of a known size crosses it
    /// on any host without filling the host (see `memory_spike`).
    #[serde(default)]
    pub memory_threshold_above_use_mib: Option<u64>,
    /// Set `resource_spike`'s disk threshold this many MiB above the use of the state
    /// directory's file system when the instance starts (see `disk_spike`).
    #[serde(default)]
    pub disk_threshold_above_use_mib: Option<u64>,
    /// Run the watchdog, and so serve and everything it starts, with this limit on
    /// open file descriptors (soft and hard `RLIMIT_NOFILE`), for faults that use
    /// them up (see `descriptors_exhausted`).
    #[serde(default)]
    pub nofile: Option<u64>,
}

/// `slo:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Longest allowed time from a fault's injection to the steady state holding again.
    #[serde(with = "humantime_serde")]
    pub max_recovery: Duration,
    /// Longest allowed time from injection to detection; when set, every detectable
    /// fault must be detected.
    #[serde(default, with = "humantime_serde")]
    pub max_detection: Option<Duration>,
    /// How long the steady state must hold again to count as recovered (default 1 s).
    #[serde(default, with = "humantime_serde")]
    pub settle: Option<Duration>,
}

impl Slo {
    /// The settle time.
    pub fn settle(&self) -> Duration {
        self.settle.unwrap_or(Duration::from_secs(1))
    }
}

/// An abort condition: a probe failing continuously for longer than a bound.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRule {
    /// The probe.
    pub probe: Probe,
    /// How long it may fail before injection stops.
    #[serde(with = "humantime_serde")]
    pub failing_for: Duration,
}

impl Scenario {
    /// Parses and checks a scenario; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ChaosError> {
        let mut s: Scenario = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ChaosError::Parse {
                file: file.to_owned(),
                line,
                column,
                message: strip_location(&e.to_string()),
            }
        })?;
        s.check().map_err(|message| ChaosError::Invalid {
            file: file.to_owned(),
            message,
        })?;
        if s.steady_state.is_empty() {
            s.steady_state.push(Probe::HealthOk);
        }
        s.faults.sort_by_key(|st| st.at);
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty; give the scenario a name".to_owned());
        }
        if self.faults.is_empty() {
            return Err("`faults` is empty; a scenario injects at least one fault".to_owned());
        }
        if self.slo.max_recovery.is_zero() {
            return Err("`slo.max_recovery` must be more than 0".to_owned());
        }
        for p in self
            .steady_state
            .iter()
            .chain(self.abort.iter().map(|a| &a.probe))
            .chain(self.before.iter())
        {
            if let Probe::HttpGet { path, .. } = p {
                if !path.starts_with('/') {
                    return Err(format!("probe http_get path {path:?} must start with `/`"));
                }
            }
        }
        for e in &self.expect {
            e.check()?;
        }
        if let Some(n) = self.spawn.nofile {
            if n < 32 {
                return Err(format!(
                    "spawn.nofile {n} is too low for serve to start: give at least 32"
                ));
            }
        }
        if self.expect.contains(&Expectation::FilesRestored)
            && !self
                .all_faults()
                .any(|f| matches!(f.kind, FaultKind::Corrupt { .. }))
        {
            return Err("expectation files_restored needs a corrupt fault".to_owned());
        }
        Ok(())
    }

    /// Every fault, in step order.
    pub fn all_faults(&self) -> impl Iterator<Item = &Fault> {
        self.faults.iter().flat_map(|s| s.faults.iter())
    }

    /// The steady-state wait before injection.
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or(Duration::from_secs(30))
    }

    /// How long to observe after the last fault ends.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(self.slo.max_recovery * 2)
    }

    /// The observation period.
    pub fn poll(&self) -> Duration {
        self.poll
            .unwrap_or(Duration::from_millis(50))
            .max(Duration::from_millis(10))
    }

    /// Offset at which the last fault (with its repeats and duration) ends.
    pub fn injection_end(&self) -> Duration {
        self.faults
            .iter()
            .flat_map(|s| s.faults.iter().map(move |f| s.at + fault_span(f)))
            .max()
            .unwrap_or_default()
    }
}

/// How long a fault takes from its first injection to its end.
pub fn fault_span(f: &Fault) -> Duration {
    f.every * f.repeat.saturating_sub(1) + f.duration.unwrap_or_default()
}

/// serde_yaml_ng appends " at line L column C" to messages; the error already says it.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
