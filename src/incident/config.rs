//! The `[incidents]` section of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

use crate::audit::FsyncPolicy;

/// Settings of the incident section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// When `incidents.jsonl` is fsynced: `"group"` (default: every `group_interval`, and
    /// on [`crate::incident::IncidentStore::sync`]) or `"always"` (every line).
    pub fsync: FsyncPolicy,
    /// The group-commit interval (default 50 ms).
    #[serde(with = "humantime_serde")]
    pub group_interval: Duration,
    /// How many closed incidents are kept in memory for the API and dashboard (older
    /// ones stay in the file; default 1000).
    pub keep_recent: usize,
    /// Closed incidents older than this (by their `resolved_at`) move from
    /// `incidents.jsonl` to `incidents/<YYYY-MM>.jsonl` (default 30 days), checked at
    /// start and hourly.
    #[serde(with = "humantime_serde")]
    pub retain_closed: Duration,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            fsync: FsyncPolicy::Group,
            group_interval: Duration::from_millis(50),
            keep_recent: 1000,
            retain_closed: Duration::from_secs(30 * 24 * 3600),
        }
    }
}
