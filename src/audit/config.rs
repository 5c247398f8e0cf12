//! The `[audit]` section of `grace.toml`, and the fsync policy shared by the append-only
//! files (`audit.log`, `incidents.jsonl`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When appended records are forced to disk with fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Every append is on disk before it returns. Appends from concurrent threads share
    /// one fsync (group commit), so a lone writer pays one fsync per record.
    Always,
    /// Appends return once written to the OS (they survive a crash of the process at
    /// once); a background flusher fsyncs every `group_interval`, so a power loss loses
    /// at most that much. Records that must be on disk before returning use the
    /// `*_durable` calls, which join the next group fsync.
    #[default]
    Group,
}

/// Settings of the audit section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `"always"` or `"group"` (default).
    pub fsync: FsyncPolicy,
    /// How often the group-commit flusher fsyncs (default 50 ms).
    #[serde(with = "humantime_serde")]
    pub group_interval: Duration,
    /// Past this size `audit.log` is closed as a segment under `audit/` and the chain
    /// goes on in a new file (default 16 MB).
    pub max_segment_size: crate::config::ByteSize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fsync: FsyncPolicy::Group,
            group_interval: Duration::from_millis(50),
            max_segment_size: crate::config::ByteSize(16_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policy_and_interval() {
        let c: AuditConfig =
            toml::from_str("fsync = \"always\"\ngroup_interval = \"10ms\"").expect("parse");
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.group_interval, Duration::from_millis(10));
        assert_eq!(
            toml::from_str::<AuditConfig>("").expect("empty"),
            AuditConfig::default()
        );
        assert!(toml::from_str::<AuditConfig>("fsync = \"sometimes\"").is_err());
    }
}
