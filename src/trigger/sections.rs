//! The tables of `[triggers]`: the keys every trigger table shares ([`Common`]), one
//! `[triggers.<name>]` type per built-in trigger, and `[[triggers.exec]]`. Defaults are
//! DESIGN.md's trigger table.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::incident::Severity;

/// What `resource_spike` measures CPU and memory of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceScope {
    /// Serve and its descendants (the processes of its exec kernels).
    #[default]
    Tree,
    /// The whole host: an explicit choice, since other programs' use counts too.
    Host,
}

/// The common keys of a trigger table, read by [`TriggersConfig::rule`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Common<'a> {
    /// Check interval.
    pub interval: Duration,
    /// `for`.
    pub hold_for: Duration,
    /// Own repeat interval.
    pub repeat_interval: Option<Duration>,
    /// Own flap thresholds.
    pub flap_high: Option<f64>,
    /// Own flap thresholds.
    pub flap_low: Option<f64>,
    /// Playbook override.
    pub playbook: Option<&'a str>,
}

macro_rules! section {
    (
        $(#[$doc:meta])*
        $name:ident { interval: $interval:expr, hold_for: $hold:expr }
        { $( $(#[$fm:meta])* $field:ident : $ty:ty = $default:expr, )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// Whether this trigger runs.
            pub enabled: bool,
            /// How often it checks (its kernel's heartbeat interval).
            #[serde(with = "humantime_serde")]
            pub interval: Duration,
            /// `for`: how long a condition must hold before it fires.
            #[serde(rename = "for", with = "humantime_serde")]
            pub hold_for: Duration,
            /// Least time between publications of a holding condition (default:
            /// `[triggers] repeat_interval`).
            #[serde(with = "humantime_serde")]
            pub repeat_interval: Option<Duration>,
            /// The playbook to run instead of the default one.
            pub playbook: Option<String>,
            /// Flap start threshold (default: `[triggers] flap_high`).
            pub flap_high: Option<f64>,
            /// Flap stop threshold (default: `[triggers] flap_low`).
            pub flap_low: Option<f64>,
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    enabled: true,
                    interval: $interval,
                    hold_for: $hold,
                    repeat_interval: None,
                    playbook: None,
                    flap_high: None,
                    flap_low: None,
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// The common keys.
            pub fn common(&self) -> Common<'_> {
                Common {
                    interval: self.interval,
                    hold_for: self.hold_for,
                    repeat_interval: self.repeat_interval,
                    flap_high: self.flap_high,
                    flap_low: self.flap_low,
                    playbook: self.playbook.as_deref(),
                }
            }

            /// The playbook: the override, else `default`.
            pub fn playbook_or<'a>(&'a self, default: &'a str) -> &'a str {
                self.playbook.as_deref().unwrap_or(default)
            }
        }
    };
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Words in the reason of a restart that was asked for rather than caused by a fault.
fn requested_restarts() -> Vec<String> {
    strings(&["operator", "playbook", "diagnostics"])
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

section! {
    /// Kernels whose heartbeat is older than their timeout (playbook `restart_kernel`).
    HeartbeatFailureConfig { interval: secs(5), hold_for: Duration::ZERO } {
        /// Also watch critical kernels (by default `critical_heartbeat` watches them).
        include_critical: bool = false,
    }
}

section! {
    /// Critical kernels: one down is an incident (`critical_kernel_restart`), several
    /// down an emergency, late beats an early warning.
    CriticalHeartbeatConfig { interval: secs(5), hold_for: Duration::ZERO } {
        /// How many critical kernels down at once make an emergency.
        emergency_min: usize = 2,
        /// A beat older than this fraction of the timeout is late.
        late_fraction: f64 = 0.5,
        /// Playbook of the emergency.
        emergency_playbook: String = "emergency_critical_kernel_recovery".to_owned(),
        /// Playbook of the late-beat early warning.
        warning_playbook: String = "proactive_kernel_health_check".to_owned(),
    }
}

section! {
    /// HTTP requests timing out (playbook `restart_service`).
    ApiTimeoutConfig { interval: secs(5), hold_for: Duration::ZERO } {
        /// The window timeouts are counted in (at most 300 s).
        #[serde(with = "humantime_serde")]
        window: Duration = secs(60),
        /// Timeouts in the window that fire.
        min_timeouts: u64 = 5,
        /// The component named in the incident.
        component: String = "serve".to_owned(),
    }
}

section! {
    /// Request latency p95 above a threshold (playbook `performance_optimization`).
    KpiThresholdConfig { interval: secs(5), hold_for: secs(60) } {
        /// The window the p95 is computed over (at most 300 s).
        #[serde(with = "humantime_serde")]
        window: Duration = secs(60),
        /// The p95 threshold in milliseconds.
        p95_ms: f64 = 1000.0,
        /// Fewer samples than this in the window never fire.
        min_samples: usize = 20,
        /// The component named in the incident.
        component: String = "serve".to_owned(),
    }
}

section! {
    /// Worker-pool backlog above a limit (playbook `scale_workers`).
    LatencyQueueConfig { interval: secs(5), hold_for: secs(30) } {
        /// The backlog above which a pool is behind.
        backlog_limit: u64 = 100,
        /// Kernels to watch; empty: every kernel whose stats report a `backlog`.
        kernels: Vec<String> = Vec::new(),
        /// How long to wait for a kernel's stats.
        #[serde(with = "humantime_serde")]
        stats_timeout: Duration = secs(1),
    }
}

section! {
    /// Host CPU, memory and disk pressure (component `host`). `for` is the window of
    /// all three unless one sets its own; `playbook` replaces all three playbooks.
    ResourceSpikeConfig { interval: secs(5), hold_for: secs(60) } {
        /// What CPU and memory are measured: `tree` (default), serve's process tree
        /// (serve and every process it started: its exec kernels); `host`, the whole
        /// host, other programs included. Disk is always the state directory's file
        /// system; `process`, when set, overrides this.
        scope: ResourceScope = ResourceScope::Tree,
        /// CPU use, percent of the host's CPU capacity (all cores), above which there
        /// is pressure.
        cpu_percent: f64 = 85.0,
        /// Memory use, percent of the host's memory (resident memory of the tree, or
        /// memory in use on the host).
        memory_percent: f64 = 80.0,
        /// Disk use of the state directory's file system, percent.
        disk_percent: f64 = 90.0,
        /// CPU window.
        #[serde(with = "humantime_serde")]
        cpu_for: Option<Duration> = None,
        /// Memory window.
        #[serde(with = "humantime_serde")]
        memory_for: Option<Duration> = None,
        /// Disk window.
        #[serde(with = "humantime_serde")]
        disk_for: Option<Duration> = None,
        /// CPU playbook.
        cpu_playbook: String = "shed_load".to_owned(),
        /// Memory playbook.
        memory_playbook: String = "restart_service".to_owned(),
        /// Disk playbook.
        disk_playbook: String = "resource_cleanup".to_owned(),
        /// The path whose file system is watched (default: the state directory).
        disk_path: Option<PathBuf> = None,
        /// Watch one process instead of the host for CPU and memory: `"self"` (this serve
        /// process) or the path of a PID file (relative: from the state directory). CPU
        /// is then the process's (100 = one core), memory its resident set; while no such
        /// process runs there is no pressure.
        process: Option<String> = None,
        /// Memory pressure above this many MiB in use (host) or resident (tree,
        /// process), instead of `memory_percent`.
        memory_mib: Option<u64> = None,
    }
}

section! {
    /// Components whose trust score fell below a minimum (`rollback_deployment`).
    TrustScoreConfig { interval: secs(10), hold_for: Duration::ZERO } {
        /// The minimum score (default: `[trust] threshold`, 0.7).
        min_score: Option<f64> = None,
    }
}

section! {
    /// Crashes of process-isolated kernels (playbook `quarantine_artifacts`).
    SandboxFailureConfig { interval: secs(2), hold_for: Duration::ZERO } {
        /// Restarts whose reason contains one of these (any case) are not crashes: by
        /// default those asked by an operator, a playbook or a diagnosis.
        ignore_reasons: Vec<String> = requested_restarts(),
    }
}

section! {
    /// Error events per bucket above an EWMA baseline (playbook `run_diagnostics`).
    EventAnomalyConfig { interval: secs(5), hold_for: Duration::ZERO } {
        /// The topics counted as errors.
        topics: Vec<String> = strings(&[
            "kernel.error",
            "kernel.restart.initiated",
            "kernel.restart.failed",
            "kernel.restart.max_attempts",
        ]),
        /// The bucket the rate is counted in (one minute: errors per minute).
        #[serde(with = "humantime_serde")]
        bucket: Duration = secs(60),
        /// A bucket above baseline × factor is a burst.
        factor: f64 = 3.0,
        /// ... and above this floor, whatever the baseline.
        floor: u64 = 10,
        /// EWMA smoothing of the baseline (weight of the newest bucket).
        alpha: f64 = 0.3,
    }
}

section! {
    /// Watched config files changed without a deploy (`restore_from_snapshot`).
    ConfigDriftConfig { interval: secs(10), hold_for: Duration::ZERO } {
        /// Glob patterns of watched files (relative ones from the working directory).
        paths: Vec<String> = strings(&["grace.toml", "playbooks/*.yaml", "playbooks/*.yml"]),
        /// A file of this name in the state directory accepts the current files as the
        /// new baseline (a deploy creates it; the trigger removes it).
        accept_marker: String = "accept_config_changes".to_owned(),
    }
}

section! {
    /// Model weights whose checksum does not match their manifest
    /// (`restore_model_weights`).
    ModelIntegrityConfig { interval: secs(60), hold_for: Duration::ZERO } {
        /// Glob patterns of weight files (relative ones from the state directory).
        paths: Vec<String> = strings(&["models/*.pt", "models/*.pkl", "models/*.safetensors"]),
        /// A JSON manifest `{"<path>": "<sha256>"}` (relative: from the state directory;
        /// its paths relative to its own directory); files it does not list use
        /// `<file>.sha256` or `<file>.manifest.json` beside them.
        manifest: Option<PathBuf> = None,
    }
}

section! {
    /// The same error signature N times in a window (`escalate_to_coding_agent`).
    RepeatedErrorConfig { interval: secs(5), hold_for: Duration::ZERO } {
        /// Occurrences that fire.
        threshold: usize = 3,
        /// Restart reasons containing one of these (any case) are not errors.
        ignore_reasons: Vec<String> = requested_restarts(),
        /// The sliding window.
        #[serde(with = "humantime_serde")]
        window: Duration = secs(300),
    }
}

section! {
    /// A scheduled health check (playbook `proactive_kernel_health_check`): every
    /// `every`, or at the minutes of a 5-field `cron` expression (local time).
    ScheduledConfig { interval: secs(10), hold_for: Duration::ZERO } {
        /// The period, when there is no `cron`.
        #[serde(with = "humantime_serde")]
        every: Duration = secs(3600),
        /// `minute hour day-of-month month day-of-week`, e.g. `*/15 * * * *`.
        cron: Option<String> = None,
        /// The component named in the event.
        component: String = "system".to_owned(),
    }
}

/// One `[[triggers.exec]]`: a command run every `interval`; a non-zero exit (or a
/// timeout) is an incident with `playbook`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecTriggerConfig {
    /// Unique name; the kernel is `trigger.exec.<name>`.
    pub name: String,
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// The playbook of the incident.
    pub playbook: String,
    /// Whether it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often it runs.
    #[serde(default = "exec_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Killed (its process group) after this long; a timeout is a failure.
    #[serde(default = "exec_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `for`.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub hold_for: Duration,
    /// Least time between publications while it keeps failing.
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
    /// The component named in the incident (default: the name).
    #[serde(default)]
    pub component: Option<String>,
    /// The failure mode named in the incident.
    #[serde(default = "exec_failure_mode")]
    pub failure_mode: String,
    /// The incident's severity.
    #[serde(default = "exec_severity")]
    pub severity: Severity,
    /// Flap start threshold.
    #[serde(default)]
    pub flap_high: Option<f64>,
    /// Flap stop threshold.
    #[serde(default)]
    pub flap_low: Option<f64>,
}

fn yes() -> bool {
    true
}
fn exec_interval() -> Duration {
    secs(30)
}
fn exec_timeout() -> Duration {
    secs(10)
}
fn exec_failure_mode() -> String {
    "check_failed".to_owned()
}
fn exec_severity() -> Severity {
    Severity::Medium
}

impl ExecTriggerConfig {
    /// The common keys.
    pub fn common(&self) -> Common<'_> {
        Common {
            interval: self.interval,
            hold_for: self.hold_for,
            repeat_interval: self.repeat_interval,
            flap_high: self.flap_high,
            flap_low: self.flap_low,
            playbook: Some(&self.playbook),
        }
    }
}
