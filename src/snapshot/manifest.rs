//! The checksum manifest of one kind's snapshots: `snapshots/<kind>/manifest.json`.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SnapshotError;
use crate::state::atomic_write;

/// One snapshot as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The snapshot's file name inside its kind directory.
    pub file: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The watched file it copies.
    pub source: String,
}

/// Every snapshot of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The snapshots, oldest first.
    pub snapshots: Vec<Entry>,
}

impl Manifest {
    /// Reads `path`; a missing file is an empty manifest.
    pub fn read(path: &Path) -> Result<Manifest, SnapshotError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Manifest {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(SnapshotError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes it to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), SnapshotError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| SnapshotError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        atomic_write(path, &json)
            .map_err(|e| SnapshotError::io(format!("writing {}", path.display()), e))
    }
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
