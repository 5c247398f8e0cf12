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
use crate::trigger::checksum::{classify_read_error, expand, HashCache, ReadFailure};
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

/// One reading of the watched files.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The checksums of the files that could be read.
    pub sums: Checksums,
    /// Files that are there (or may be) but could not be read, with the error: neither
    /// drift nor removed.
    pub unreadable: BTreeMap<PathBuf, String>,
}

/// Hashes the files matching `patterns`, and every file of `known` (the baseline) the
/// patterns did not list: a directory that cannot be listed (too many open files) does
/// not make its files "removed". Only a file that is not found is absent; one that
/// cannot be read is in [`Scan::unreadable`].
pub(crate) fn scan(
    trigger: &str,
    patterns: &[String],
    known: &BTreeSet<PathBuf>,
    cache: &mut HashCache,
) -> Scan {
    let mut files = match expand(patterns) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(trigger, error = %e, "bad watch pattern");
            BTreeSet::new()
        }
    };
    files.extend(known.iter().cloned());
    cache.retain(&files);
    let mut out = Scan::default();
    for p in files {
        match cache.digest(&p) {
            Ok(d) => {
                out.sums.insert(p, d);
            }
            Err(e) => match classify_read_error(&e) {
                ReadFailure::Missing => {}
                ReadFailure::Unreadable(text) => {
                    tracing::warn!(trigger, path = %p.display(), error = %text, "cannot read watched file");
                    out.unreadable.insert(p, text);
                }
            },
        }
    }
    out
}

/// The informational condition of a watched file that cannot be read (`file_unreadable`,
/// severity Low): no remediation, and the baseline is kept.
pub(crate) fn unreadable_alert(
    trigger: &str,
    path: &std::path::Path,
    error: &str,
    extra: Option<Value>,
) -> Alert {
    let shown = path.display().to_string();
    let mut details = json!({ "path": shown, "error": error });
    if let (Value::Object(d), Some(Value::Object(e))) = (&mut details, extra) {
        d.extend(e);
    }
    Alert::new(
        Level::Incident,
        trigger,
        &shown,
        "file_unreadable",
        Severity::Low,
        None,
        format!("watched file {shown} cannot be read: {error}"),
    )
    .details(details)
    .informational(format!(
        "the file could not be read ({error}); a read error other than \"not found\" says \
         nothing about its content, so it is neither drift nor corruption"
    ))
}

/// `config_drift`: compares the watched files with the accepted baseline.
pub struct ConfigDrift {
    cfg: ConfigDriftConfig,
    baseline: SharedBaseline,
    cache: Option<HashCache>,
    accepted: u64,
    /// Files that could not be read when the baseline was recorded: their first
    /// successful read completes the baseline instead of being reported as added.
    pending: BTreeSet<PathBuf>,
    unreadable: usize,
}

impl ConfigDrift {
    /// The trigger with its settings and the baseline shared across its restarts.
    pub fn new(cfg: ConfigDriftConfig, baseline: SharedBaseline) -> ConfigDrift {
        ConfigDrift {
            cfg,
            baseline,
            cache: Some(HashCache::default()),
            accepted: 0,
            pending: BTreeSet::new(),
            unreadable: 0,
        }
    }

    async fn scan(&mut self) -> Result<Scan, TriggerError> {
        let mut cache = self.cache.take().unwrap_or_default();
        let patterns = self.cfg.paths.clone();
        let mut known: BTreeSet<PathBuf> = self
            .baseline
            .lock()
            .as_ref()
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        known.extend(self.pending.iter().cloned());
        let (cache, sums) = tokio::task::spawn_blocking(move || {
            let sums = scan("config_drift", &patterns, &known, &mut cache);
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
            let scan = self.scan().await?;
            tracing::info!(
                files = scan.sums.len(),
                unreadable = scan.unreadable.len(),
                "config_drift: baseline recorded"
            );
            self.pending = scan.unreadable.into_keys().collect();
            *self.baseline.lock() = Some(scan.sums);
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
        self.unreadable = current.unreadable.len();
        if accept {
            std::fs::remove_file(&marker)
                .map_err(|e| TriggerError::io("config_drift", &marker, e))?;
            tracing::info!(
                files = current.sums.len(),
                "config_drift: changes accepted as the new baseline"
            );
            // A file that cannot be read now keeps its accepted checksum.
            let mut baseline = self.baseline.lock();
            let old = baseline.take().unwrap_or_default();
            let mut new = current.sums;
            for p in current.unreadable.keys() {
                if let Some(d) = old.get(p) {
                    new.insert(p.clone(), d.clone());
                }
            }
            *baseline = Some(new);
            self.accepted += 1;
            return Ok(Vec::new());
        }
        let accepted = {
            let mut baseline = self.baseline.lock();
            let b = baseline.get_or_insert_with(Checksums::new);
            // Files unreadable at start: their first reading completes the baseline.
            for p in std::mem::take(&mut self.pending) {
                match current.sums.get(&p) {
                    Some(d) if !b.contains_key(&p) => {
                        b.insert(p, d.clone());
                    }
                    Some(_) => {}
                    None if current.unreadable.contains_key(&p) => {
                        self.pending.insert(p);
                    }
                    None => {}
                }
            }
            b.clone()
        };
        let playbook = self.cfg.playbook_or("restore_from_snapshot");
        let drift = compare(&accepted, &current.sums)
            .into_iter()
            // Unreadable is not removed: what is in the file is not known.
            .filter(|(path, _)| !current.unreadable.contains_key(path))
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
            });
        let unreadable = current.unreadable.iter().map(|(path, error)| {
            Finding::Holds(unreadable_alert("config_drift", path, error, None))
        });
        Ok(drift.chain(unreadable).collect())
    }

    fn stats(&self) -> Value {
        json!({
            "files": self.baseline.lock().as_ref().map_or(0, BTreeMap::len),
            "accepted": self.accepted,
            "unreadable": self.unreadable,
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

    const EMFILE_CHILD: &str = "GRACE_TEST_DRIFT_EMFILE_DIR";

    /// In a child process whose descriptor limit `ulimit -n` lowered: with every
    /// descriptor in use, a watched file cannot be opened (EMFILE), and the scan says
    /// so instead of reporting it removed.
    #[test]
    fn with_no_descriptors_left_a_watched_file_is_unreadable_not_removed() {
        if let Ok(dir) = std::env::var(EMFILE_CHILD) {
            let dir = PathBuf::from(dir);
            let patterns = vec![format!("{}/*.toml", dir.display())];
            let base = scan("t", &patterns, &BTreeSet::new(), &mut HashCache::default());
            assert_eq!(base.sums.len(), 1, "{base:?}");
            let known: BTreeSet<PathBuf> = base.sums.keys().cloned().collect();
            let mut held = Vec::new();
            let exhausted = loop {
                match std::fs::File::open("/dev/null") {
                    Ok(f) => held.push(f),
                    Err(e) => break e,
                }
                assert!(held.len() < 100_000, "no descriptor limit");
            };
            let now = scan("t", &patterns, &known, &mut HashCache::default());
            drop(held);
            assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE));
            assert!(now.sums.is_empty(), "{now:?}");
            let error = &now.unreadable[&dir.join("grace.toml")];
            assert!(error.contains("os error 24"), "{error}");
            let removed: Vec<_> = compare(&base.sums, &now.sums)
                .into_iter()
                .filter(|(p, _)| !now.unreadable.contains_key(p))
                .collect();
            assert!(removed.is_empty(), "{removed:?}");
            println!("emfile child: unreadable, not removed");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("grace.toml"), "a = 1\n").expect("write");
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new("sh")
            .args(["-c", "ulimit -n 32 && exec \"$0\" \"$@\""])
            .arg(exe)
            .args([
                "--exact",
                "trigger::builtin::drift::tests::with_no_descriptors_left_a_watched_file_is_unreadable_not_removed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(EMFILE_CHILD, dir.path())
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("emfile child: unreadable, not removed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
