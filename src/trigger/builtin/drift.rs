//! `config_drift`: watched config files whose SHA-256 differs from the baseline recorded
//! when serve started, without a deploy → `restore_from_snapshot`.
//!
//! A deploy tells Grace that the new files are intended by creating the marker file
//! `<state dir>/accept_config_changes` (name configurable; `grace snapshot` writes it
//! after snapshotting the watched files): at its next check, which the marker's own file
//! event starts, the trigger records the current checksums as the new baseline and
//! removes the marker.
//! Restarting serve also records a new baseline, since serve reads its configuration at
//! start. The baseline is kept outside the trigger's actor, so a restarted trigger does
//! not forget a drift.
//!
//! The watched directories are also watched for events (`notify`), so a change is
//! checked at once; the periodic check stays as the fallback.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};

use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::checksum::{expand, HashCache};
use crate::trigger::config::ConfigDriftConfig;
use crate::trigger::watch::absolute;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// Checksums by file.
pub type Checksums = BTreeMap<PathBuf, String>;

/// The accepted checksums, shared by every incarnation of the trigger.
pub type SharedBaseline = Arc<Mutex<Option<Checksums>>>;

/// How a watched file differs from its baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Its content changed.
    Modified {
        /// The accepted checksum.
        expected: String,
        /// The current one.
        actual: String,
    },
    /// It is gone.
    Removed {
        /// The accepted checksum.
        expected: String,
    },
    /// A new file matches the watched patterns.
    Added {
        /// Its checksum.
        actual: String,
    },
}

/// The differences between the accepted and the current checksums.
pub fn compare(accepted: &Checksums, current: &Checksums) -> Vec<(PathBuf, Change)> {
    let paths: BTreeSet<&PathBuf> = accepted.keys().chain(current.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let c = match (accepted.get(p), current.get(p)) {
                (Some(a), Some(b)) if a != b => Change::Modified {
                    expected: a.clone(),
                    actual: b.clone(),
                },
                (Some(a), None) => Change::Removed {
                    expected: a.clone(),
                },
                (None, Some(b)) => Change::Added { actual: b.clone() },
                _ => return None,
            };
            Some((p.clone(), c))
        })
        .collect()
}

/// Hashes the files matching `patterns`; unreadable files are logged and left out.
pub(crate) fn scan(trigger: &str, patterns: &[String], cache: &mut HashCache) -> Checksums {
    let files = match expand(patterns) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(trigger, error = %e, "bad watch pattern");
            BTreeSet::new()
        }
    };
    cache.retain(&files);
    files
        .into_iter()
        .filter_map(|p| match cache.digest(&p) {
            Ok(d) => Some((p, d)),
            Err(e) => {
                tracing::warn!(trigger, path = %p.display(), error = %e, "cannot hash watched file");
                None
            }
        })
        .collect()
}

/// `config_drift`: compares the watched files with the accepted baseline.
pub struct ConfigDrift {
    cfg: ConfigDriftConfig,
    baseline: SharedBaseline,
    cache: Option<HashCache>,
    accepted: u64,
}

impl ConfigDrift {
    /// The trigger with its settings and the baseline shared across its restarts.
    pub fn new(cfg: ConfigDriftConfig, baseline: SharedBaseline) -> ConfigDrift {
        ConfigDrift {
            cfg,
            baseline,
            cache: Some(HashCache::default()),
            accepted: 0,
        }
    }

    async fn scan(&mut self) -> Result<Checksums, TriggerError> {
        let mut cache = self.cache.take().unwrap_or_default();
        let patterns = self.cfg.paths.clone();
        let (cache, sums) = tokio::task::spawn_blocking(move || {
            let sums = scan("config_drift", &patterns, &mut cache);
            (cache, sums)
        })
        .await
        .map_err(|e| TriggerError::check("config_drift", format!("hashing task: {e}")))?;
        self.cache = Some(cache);
        Ok(sums)
    }
}

#[async_trait]
impl Trigger for ConfigDrift {
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), TriggerError> {
        if self.baseline.lock().is_none() {
            let sums = self.scan().await?;
            tracing::info!(files = sums.len(), "config_drift: baseline recorded");
            *self.baseline.lock() = Some(sums);
        }
        Ok(())
    }

    fn watch_patterns(&self, ctx: &KernelContext) -> Vec<String> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut p = absolute(&self.cfg.paths, &cwd);
        // The marker too, so that an accepted deploy is taken at once.
        p.extend(absolute(
            &[glob::Pattern::escape(&self.cfg.accept_marker)],
            ctx.system.paths.root(),
        ));
        p
    }

    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        // The marker is looked at before the files are read: a deploy writes its files,
        // then the marker, so what is read after seeing it is what was deployed.
        let marker = ctx.system.paths.root().join(&self.cfg.accept_marker);
        let accept = marker.exists();
        let current = self.scan().await?;
        if accept {
            std::fs::remove_file(&marker)
                .map_err(|e| TriggerError::io("config_drift", &marker, e))?;
            tracing::info!(
                files = current.len(),
                "config_drift: changes accepted as the new baseline"
            );
            *self.baseline.lock() = Some(current);
            self.accepted += 1;
            return Ok(Vec::new());
        }
        let accepted = self.baseline.lock().clone().unwrap_or_default();
        let playbook = self.cfg.playbook_or("restore_from_snapshot");
        Ok(compare(&accepted, &current)
            .into_iter()
            .map(|(path, change)| {
                let shown = path.display().to_string();
                let what = match &change {
                    Change::Modified { .. } => "was modified",
                    Change::Removed { .. } => "was removed",
                    Change::Added { .. } => "appeared",
                };
                let mut details = serde_json::to_value(&change).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut details {
                    m.insert("path".to_owned(), json!(shown));
                }
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "config_drift",
                        &shown,
                        "config_drift",
                        Severity::High,
                        Some(playbook),
                        format!("watched config file {shown} {what} without a deploy"),
                    )
                    .details(details),
                )
            })
            .collect())
    }

    fn stats(&self) -> Value {
        json!({
            "files": self.baseline.lock().as_ref().map_or(0, BTreeMap::len),
            "accepted": self.accepted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sums() -> impl Strategy<Value = Checksums> {
        proptest::collection::btree_map(
            "[a-d]".prop_map(PathBuf::from),
            "[0-2]".prop_map(String::from),
            0..4,
        )
    }

    proptest! {
        #[test]
        fn differences_are_exactly_the_changed_files(a in sums(), b in sums()) {
            prop_assert!(compare(&a, &a).is_empty());
            let diff = compare(&a, &b);
            for (p, c) in &diff {
                match c {
                    Change::Modified { expected, actual } => {
                        prop_assert_eq!(a.get(p), Some(expected));
                        prop_assert_eq!(b.get(p), Some(actual));
                        prop_assert_ne!(expected, actual);
                    }
                    Change::Removed { .. } => prop_assert!(a.contains_key(p) && !b.contains_key(p)),
                    Change::Added { .. } => prop_assert!(!a.contains_key(p) && b.contains_key(p)),
                }
            }
            let same = a.iter().filter(|(p, d)| b.get(*p) == Some(*d)).count();
            let all: BTreeSet<_> = a.keys().chain(b.keys()).collect();
            prop_assert_eq!(diff.len() + same, all.len());
        }
    }
}
