//! The `[audit]` section of `grace.toml`.

use serde::Deserialize;

/// Settings of the audit section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {}
