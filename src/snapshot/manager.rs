//! [`SnapshotManager`]: takes, lists and restores snapshots of the watched files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use super::manifest::{sha256_hex, Entry, Manifest};
use super::policy::{self, Choice};
use super::{SnapshotError, SnapshotsConfig};
use crate::config::Config;
use crate::state::{atomic_write, StatePaths};

/// Manifest updates of every manager in this process go one at a time.
static MANIFEST_LOCK: Mutex<()> = Mutex::new(());

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The file written back.
    pub source: PathBuf,
    /// The snapshot it came from.
    pub snapshot: Entry,
    /// Newer snapshots skipped because they no longer match their checksum.
    pub corrupted: Vec<Entry>,
}

/// Snapshots of the watched files of one state directory. Cheap to build; holds no
/// state besides its settings (everything else is in files).
#[derive(Debug, Clone)]
pub struct SnapshotManager {
    root: PathBuf,
    dir: PathBuf,
    cfg: SnapshotsConfig,
    extra: Vec<PathBuf>,
}

impl SnapshotManager {
    /// A manager over state directory `paths` with settings `cfg`.
    pub fn new(paths: &StatePaths, cfg: SnapshotsConfig) -> SnapshotManager {
        SnapshotManager {
            root: paths.root().to_path_buf(),
            dir: paths.snapshots_dir(),
            cfg,
            extra: Vec::new(),
        }
    }

    /// A manager for a running configuration: `[snapshots]`, plus the weights file of
    /// every `model` kernel.
    pub fn from_config(config: &Config, paths: &StatePaths) -> SnapshotManager {
        let mut m = SnapshotManager::new(paths, config.snapshots.clone());
        for k in config.kernel.iter().filter(|k| k.kind == "model") {
            m.extra
                .push(model_weights(config, &k.name).unwrap_or_default());
        }
        m.extra.retain(|p| !p.as_os_str().is_empty());
        m
    }

    /// Also watches `file` (such as the config file).
    pub fn watch(mut self, file: impl Into<PathBuf>) -> SnapshotManager {
        self.extra.push(file.into());
        self
    }

    /// The settings.
    pub fn config(&self) -> &SnapshotsConfig {
        &self.cfg
    }

    /// `p` made absolute against the state directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// The watched files that exist now, sorted.
    pub fn watched(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut out: Vec<PathBuf> = self
            .cfg
            .files
            .iter()
            .chain(&self.extra)
            .map(|p| self.resolve(p))
            .filter(|p| p.is_file())
            .collect();
        for d in &self.cfg.dirs {
            let base = self.resolve(d);
            for pat in &self.cfg.patterns {
                let full = base.join(pat);
                let g =
                    glob::glob(&full.to_string_lossy()).map_err(|e| SnapshotError::Pattern {
                        pattern: pat.clone(),
                        reason: e.to_string(),
                    })?;
                out.extend(g.flatten().filter(|p| p.is_file()));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The directory of one kind's snapshots.
    pub fn kind_dir(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    /// The manifest of `kind`.
    pub fn manifest(&self, kind: &str) -> Result<Manifest, SnapshotError> {
        Manifest::read(&self.kind_dir(kind).join("manifest.json"))
    }

    /// Snapshots `source` now.
    pub fn create(&self, source: &Path) -> Result<Entry, SnapshotError> {
        self.create_at(source, crate::time::now())
    }

    /// Snapshots `source` as taken at `at`, writes the `latest` copy, records it in the
    /// manifest and applies retention to its kind.
    pub fn create_at(&self, source: &Path, at: DateTime<Utc>) -> Result<Entry, SnapshotError> {
        let source = self.resolve(source);
        let bytes = std::fs::read(&source)
            .map_err(|e| SnapshotError::io(format!("reading {}", source.display()), e))?;
        let kind = policy::kind_of(&source);
        let dir = self.kind_dir(kind);
        let _guard = MANIFEST_LOCK.lock();
        let mpath = dir.join("manifest.json");
        let mut manifest = Manifest::read(&mpath)?;
        let base = policy::snapshot_name(&source, at);
        let mut file = base.clone();
        let mut n = 1;
        while manifest.snapshots.iter().any(|e| e.file == file) || dir.join(&file).exists() {
            file = format!("{n}_{base}");
            n += 1;
        }
        let write = |p: &Path| {
            atomic_write(p, &bytes)
                .map_err(|e| SnapshotError::io(format!("writing snapshot {}", p.display()), e))
        };
        write(&dir.join(&file))?;
        write(&dir.join(policy::latest_name(&source)))?;
        let entry = Entry {
            file,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            taken_at: at,
            source: source.display().to_string(),
        };
        manifest.snapshots.push(entry.clone());
        let (keep, drop) = policy::retain(
            &manifest.snapshots,
            at,
            self.cfg.max_per_kind,
            self.cfg.retention,
        );
        manifest.snapshots = keep;
        manifest.write(&mpath)?;
        for d in drop {
            if let Err(e) = std::fs::remove_file(dir.join(&d.file)) {
                tracing::warn!(file = %d.file, error = %e, "cannot delete expired snapshot");
            }
        }
        Ok(entry)
    }

    /// Snapshots every watched file; returns what was taken and what failed.
    pub fn create_all_at(&self, at: DateTime<Utc>) -> (Vec<Entry>, Vec<SnapshotError>) {
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        match self.watched() {
            Ok(files) => {
                for f in files {
                    match self.create_at(&f, at) {
                        Ok(e) => ok.push(e),
                        Err(e) => failed.push(e),
                    }
                }
            }
            Err(e) => failed.push(e),
        }
        (ok, failed)
    }

    /// Every recorded snapshot by kind, oldest first.
    pub fn list(&self) -> Result<Vec<(String, Entry)>, SnapshotError> {
        let mut out = Vec::new();
        for kind in ["config", "files", "weights"] {
            for e in self.manifest(kind)?.snapshots {
                out.push((kind.to_owned(), e));
            }
        }
        Ok(out)
    }

    /// The sources with at least one snapshot.
    pub fn sources(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut s: Vec<PathBuf> = self
            .list()?
            .into_iter()
            .map(|(_, e)| PathBuf::from(e.source))
            .collect();
        s.sort();
        s.dedup();
        Ok(s)
    }

    /// Writes the newest verified snapshot back over `source` (atomically).
    pub fn restore(&self, source: &Path) -> Result<Restored, SnapshotError> {
        self.restore_with(source, false)
    }

    /// Writes back the newest verified snapshot whose content differs from what
    /// `source` holds now: the previous version.
    pub fn rollback(&self, source: &Path) -> Result<Restored, SnapshotError> {
        self.restore_with(source, true)
    }

    fn restore_with(&self, source: &Path, previous: bool) -> Result<Restored, SnapshotError> {
        let source = self.resolve(source);
        let kind = policy::kind_of(&source);
        let dir = self.kind_dir(kind);
        let manifest = self.manifest(kind)?;
        let current = if previous {
            std::fs::read(&source).ok().map(|b| sha256_hex(&b))
        } else {
            None
        };
        let key = source.display().to_string();
        let Choice { chosen, corrupted } =
            policy::choose_restore(&manifest.snapshots, &key, current.as_deref(), |e| {
                std::fs::read(dir.join(&e.file)).is_ok_and(|b| sha256_hex(&b) == e.sha256)
            });
        for c in &corrupted {
            tracing::warn!(snapshot = %c.file, source = %key, "corrupted snapshot skipped");
        }
        let Some(snapshot) = chosen else {
            return Err(SnapshotError::NoSnapshot {
                source_path: source,
                corrupted: corrupted.len(),
            });
        };
        let snap_path = dir.join(&snapshot.file);
        let bytes = std::fs::read(&snap_path)
            .map_err(|e| SnapshotError::io(format!("reading {}", snap_path.display()), e))?;
        if sha256_hex(&bytes) != snapshot.sha256 {
            return Err(SnapshotError::NoSnapshot {
                source_path: source,
                corrupted: corrupted.len() + 1,
            });
        }
        atomic_write(&source, &bytes)
            .map_err(|e| SnapshotError::io(format!("restoring {}", source.display()), e))?;
        Ok(Restored {
            source,
            snapshot,
            corrupted,
        })
    }
}

/// The weights file of the `model` kernel `name`, relative to the state directory:
/// its `weights` option, else `models/<name>.pt`.
pub fn model_weights(config: &Config, name: &str) -> Option<PathBuf> {
    let k = config
        .kernel
        .iter()
        .find(|k| k.name == name && k.kind == "model")?;
    Some(
        k.options
            .get("weights")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("models/{name}.pt"))),
    )
}
