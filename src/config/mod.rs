//! Configuration: `grace.toml`, the embedded default, and validation.

/// The loaded configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {}

/// A configuration or playbook error: what, where (file and line), how to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
