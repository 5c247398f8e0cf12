//! The `[alerts]` section of `grace.toml`.

use serde::Deserialize;

/// Settings of the alerts section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {}
