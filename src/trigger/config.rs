//! The `[trigger]` section of `grace.toml`.

use serde::Deserialize;

/// Settings of the trigger section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersConfig {}
