//! `[snapshots]`: which files are snapshotted, how often, and how long they are kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[snapshots]` in `grace.toml`. Relative paths are relative to the state directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsConfig {
    /// Whether the schedule runs (actions still work when it is off).
    pub enabled: bool,
    /// How often every watched file is snapshotted (seed: hourly).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Snapshots older than this are deleted (seed: 24 h).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// At most this many snapshots are kept per kind and file (seed: 5).
    pub max_per_kind: usize,
    /// Directories searched with `patterns`.
    pub dirs: Vec<PathBuf>,
    /// File-name globs matched inside `dirs`.
    pub patterns: Vec<String>,
    /// Extra files watched as they are (such as the config file).
    pub files: Vec<PathBuf>,
    /// Artifact paths of kernels, by kernel name: what `rollback_deployment` restores
    /// and `quarantine` moves aside.
    pub artifacts: BTreeMap<String, Vec<PathBuf>>,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            enabled: true,
            interval: Duration::from_secs(3600),
            retention: Duration::from_secs(24 * 3600),
            max_per_kind: 5,
            dirs: vec![PathBuf::from("models")],
            patterns: ["*.pt", "*.pkl", "*.yaml", "*.json", "*.toml"]
                .map(String::from)
                .to_vec(),
            files: Vec::new(),
            artifacts: BTreeMap::new(),
        }
    }
}
