//! Configuration: `grace.toml`, the embedded default, and validation.
//!
//! Every section rejects unknown keys. Each area owns its section's type (for example
//! [`crate::watchdog::WatchdogConfig`]); this module assembles them and reports errors
//! with file, line and reason.

mod kernels;
mod load;
mod preflight;
mod schema;
mod size;
mod spans;
mod validate;

pub use kernels::check_kinds;
pub use load::{line_col, line_of, load, parse, ConfigSource, Loaded, DEFAULT_TOML};
pub use preflight::{preflight, preflight_with};
pub use schema::{
    ChaosConfig, Config, HeartbeatConfig, KernelConfig, KernelsConfig, TelemetryConfig,
};
pub use size::ByteSize;
pub use validate::{heartbeat_of, RESERVED_NAMES};

/// A configuration or playbook error: what, where (file and line), how to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
