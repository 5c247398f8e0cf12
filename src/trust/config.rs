//! The `[trust]` section of `grace.toml`.

use serde::Deserialize;

/// Settings of the trust section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {}
