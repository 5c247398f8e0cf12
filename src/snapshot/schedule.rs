//! The periodic snapshots, and how a snapshot or restore is announced (bus + audit).

use std::sync::Arc;

use serde_json::json;

use super::{Entry, Restored, SnapshotManager};
use crate::bus::Topic;
use crate::tree::System;

/// Publishes `snapshot.created` and appends an audit record for `entry`.
pub fn announce_created(system: &System, entry: &Entry, component: Option<&str>) {
    let data = json!({ "snapshot": entry });
    system.bus.emit(Topic::SnapshotCreated, component, &data);
    if let Err(e) = system.audit.append("snapshot.created", data) {
        tracing::warn!(error = %e, "cannot audit snapshot");
    }
}

/// Publishes `snapshot.restored` and appends an audit record for `r`.
pub fn announce_restored(system: &System, r: &Restored, component: Option<&str>) {
    let data = json!(r);
    system.bus.emit(Topic::SnapshotRestored, component, &data);
    if let Err(e) = system.audit.append("snapshot.restored", data) {
        tracing::warn!(error = %e, "cannot audit restore");
    }
}

/// Snapshots every watched file at once and then every `[snapshots] interval`, until
/// the returned task is aborted. Does nothing when `[snapshots] enabled = false`.
pub fn spawn_schedule(
    system: Arc<System>,
    manager: SnapshotManager,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !manager.config().enabled {
            return;
        }
        let mut every = tokio::time::interval(manager.config().interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let m = manager.clone();
            let done =
                tokio::task::spawn_blocking(move || m.create_all_at(crate::time::now())).await;
            let Ok((taken, failed)) = done else { continue };
            for e in &taken {
                announce_created(&system, e, None);
            }
            for e in failed {
                tracing::warn!(error = %e, "scheduled snapshot failed");
            }
        }
    })
}
