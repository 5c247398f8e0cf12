//! Configuration: `grace.toml`, the embedded default, and validation.
//!
//! Every section rejects unknown keys. Each area owns its section's type (for example
//! [`crate::watchdog::WatchdogConfig`]); this module assembles them and reports errors
//! with file, line and reason.

mod schema;

pub use schema::{
    ChaosConfig, Config, HeartbeatConfig, KernelConfig, KernelsConfig, TelemetryConfig,
};

/// A configuration or playbook error: what, where (file and line), how to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
