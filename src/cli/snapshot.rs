//! `grace snapshot`: how a deploy tells Grace that its changes are intended. It
//! snapshots every watched file as it is now, so restores and rollbacks return to the
//! deployed version, and leaves `config_drift`'s accept marker in the state directory,
//! so a running serve takes the current config files as its new baseline (at once, on
//! the marker's file event) instead of restoring them.

use std::io::Write;
use std::path::Path;

use crate::snapshot::SnapshotManager;
use crate::state::{atomic_write, StatePaths};

/// Snapshots the watched files of the configuration at `config_path` into the state
/// directory; with `accept`, also writes the accept marker. Fails when a snapshot
/// could not be taken (the others are kept).
pub fn snapshot(
    config_path: Option<&Path>,
    state_dir: Option<&Path>,
    accept: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let loaded = crate::config::load(config_path)?;
    let paths = StatePaths::resolve(state_dir, loaded.source.path());
    let m = SnapshotManager::from_config(&loaded.config, &paths);
    let (taken, failed) = m.create_all_at(crate::time::now());
    for e in &taken {
        writeln!(
            out,
            "snapshot {} of {} ({} bytes)",
            e.file, e.source, e.size
        )?;
    }
    for e in &failed {
        writeln!(out, "failed: {e}")?;
    }
    if taken.is_empty() && failed.is_empty() {
        writeln!(out, "no watched file exists; nothing to snapshot")?;
    }
    if accept {
        let marker = paths
            .root()
            .join(&loaded.config.triggers.config_drift.accept_marker);
        atomic_write(&marker, b"")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", marker.display()))?;
        writeln!(
            out,
            "config files accepted as the new baseline ({})",
            marker.display()
        )?;
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} snapshots failed",
            failed.len(),
            failed.len() + taken.len()
        );
    }
    Ok(())
}
