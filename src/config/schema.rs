//! The shape of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

use crate::kernel::Isolation;
use crate::supervisor::{AttemptLimit, AutoShutdown, Backoff, RestartType, Strategy};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[heartbeat]`: tick and hang-detection timing.
    pub heartbeat: HeartbeatConfig,
    /// `[kernels]`: the supervisor of the user's kernels.
    pub kernels: KernelsConfig,
    /// `[[kernel]]`: the user's kernels, in start order.
    pub kernel: Vec<KernelConfig>,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[logging]`: log file rotation and stderr.
    pub logging: crate::telemetry::LoggingConfig,
    /// `[http]`.
    pub http: crate::http::HttpConfig,
    /// `[watchdog]`.
    pub watchdog: crate::watchdog::WatchdogConfig,
    /// `[alerts]`.
    pub alerts: crate::alerts::AlertsConfig,
    /// `[triggers]`.
    pub triggers: crate::trigger::TriggersConfig,
    /// `[playbooks]`.
    pub playbooks: crate::playbook::PlaybooksConfig,
    /// `[audit]`.
    pub audit: crate::audit::AuditConfig,
    /// `[incidents]`.
    pub incidents: crate::incident::IncidentsConfig,
    /// `[trust]`.
    pub trust: crate::trust::TrustConfig,
    /// `[diagnostics]`.
    pub diagnostics: crate::diagnostics::DiagnosticsConfig,
    /// `[chaos]`.
    pub chaos: ChaosConfig,
    /// `[snapshots]`.
    pub snapshots: crate::snapshot::SnapshotsConfig,
}

/// `[heartbeat]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    /// How often the monitor looks for hung kernels.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Default tick interval of standard kernels.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Default hang timeout of standard kernels (seed: 60 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Default tick interval of critical kernels.
    #[serde(with = "humantime_serde")]
    pub critical_interval: Duration,
    /// Default hang timeout of critical kernels (seed: 5 s).
    #[serde(with = "humantime_serde")]
    pub critical_timeout: Duration,
    /// Whether the monitor restarts a hung kernel itself (reason `heartbeat_timeout`).
    pub auto_restart: bool,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            check_interval: Duration::from_secs(1),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            critical_interval: Duration::from_secs(1),
            critical_timeout: Duration::from_secs(5),
            auto_restart: true,
        }
    }
}

/// `[kernels]`: how the `kernels` supervisor treats the user's kernels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelsConfig {
    /// Restart strategy.
    pub strategy: Strategy,
    /// Restart intensity: restarts allowed per window.
    pub max_restarts: u32,
    /// Restart intensity window.
    #[serde(with = "humantime_serde")]
    pub max_window: Duration,
    /// Default backoff of every kernel (none: restart at once).
    pub backoff: Option<Backoff>,
    /// Default per-kernel attempt limit (seed: 3 attempts per 30 s).
    pub attempts: Option<AttemptLimit>,
    /// Stuck `thread` kernels that may be abandoned before serve asks the watchdog to
    /// replace the process.
    pub max_abandoned_threads: usize,
    /// Whether serve ends when its significant kernels end (OTP's `auto_shutdown`:
    /// `never`, `any_significant`, `all_significant`).
    pub auto_shutdown: AutoShutdown,
}

impl Default for KernelsConfig {
    fn default() -> Self {
        KernelsConfig {
            strategy: Strategy::OneForOne,
            max_restarts: 10,
            max_window: Duration::from_secs(60),
            backoff: None,
            attempts: Some(AttemptLimit::default()),
            max_abandoned_threads: 8,
            auto_shutdown: AutoShutdown::Never,
        }
    }
}

/// One `[[kernel]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelConfig {
    /// Unique name.
    pub name: String,
    /// What it is: a built-in kind (`worker_pool`, `kv_store`, `model`, `exec`) or one a
    /// library user registered.
    pub kind: String,
    /// Critical kernels get the critical heartbeat defaults and triggers.
    #[serde(default)]
    pub critical: bool,
    /// Isolation (`exec` kernels are always `process`).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// Restart type.
    #[serde(default)]
    pub restart: RestartType,
    /// Allow restart in place.
    #[serde(default)]
    pub restart_in_place: bool,
    /// The kernel runs untrusted code: its crashes are `sandbox_failure` incidents and
    /// `quarantine_artifacts` may stop it. Default false: a crash is its supervisor's
    /// to repair.
    #[serde(default)]
    pub sandbox: bool,
    /// Tick interval (default from `[heartbeat]`).
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,
    /// Hang timeout (default from `[heartbeat]`).
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_timeout: Option<Duration>,
    /// Graceful stop timeout before kill (default 5 s).
    #[serde(default, with = "humantime_serde")]
    pub shutdown_timeout: Option<Duration>,
    /// Kill at once on stop.
    #[serde(default)]
    pub brutal_kill: bool,
    /// How long its start may take before it counts as failed (default 15 s).
    #[serde(default, with = "humantime_serde")]
    pub start_timeout: Option<Duration>,
    /// Its own end (a normal exit of a transient kernel, any exit of a temporary one)
    /// ends serve, with `[kernels] auto_shutdown`.
    #[serde(default)]
    pub significant: bool,
    /// Backoff (default from `[kernels]`).
    #[serde(default)]
    pub backoff: Option<Backoff>,
    /// Attempt limit (default from `[kernels]`).
    #[serde(default)]
    pub attempts: Option<AttemptLimit>,
    /// Kind-specific options.
    #[serde(default)]
    pub options: toml::Table,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// How often the `actor_metrics` summary of every actor is logged.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
    /// Log filter for stderr and the JSON log (`RUST_LOG` overrides).
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            metrics_interval: Duration::from_secs(60),
            log_level: "info".to_owned(),
        }
    }
}

/// `[chaos]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosConfig {
    /// Whether the fault-injection endpoints exist.
    pub enabled: bool,
}
