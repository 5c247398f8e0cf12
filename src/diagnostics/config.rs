//! The `[diagnostics]` section of `grace.toml`.

use serde::Deserialize;

/// Settings of the diagnostics section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsConfig {}
