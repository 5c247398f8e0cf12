//! The trust ledger: scores by component, persisted in `trust.json`, every change
//! published as `trust.score.update` and appended to the audit log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::TrustConfig;
use super::score::{apply, clamp, Change, TrustUpdate};
use crate::audit::{AuditError, AuditLog};
use crate::bus::{Bus, Topic};

/// Why a trust operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// `trust.json` could not be read or written.
    #[error(
        "trust scores {path}: {source}; check the state directory's permissions and free space"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The change was made but its audit record failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    version: u32,
    updated_at: String,
    scores: BTreeMap<String, f64>,
}

/// Trust scores by component, each in [0, 1], starting at `[trust] initial` (1.0).
pub struct TrustLedger {
    bus: Bus,
    audit: Arc<AuditLog>,
    path: PathBuf,
    config: TrustConfig,
    scores: Mutex<BTreeMap<String, f64>>,
}

fn load(path: &Path, audit: &AuditLog) -> Result<BTreeMap<String, f64>, TrustError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(TrustError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match serde_json::from_slice::<TrustFile>(&bytes) {
        Ok(f) => Ok(f.scores.into_iter().map(|(k, v)| (k, clamp(v))).collect()),
        Err(e) => {
            // The file is written atomically, so this is damage from outside. Keep it for
            // inspection and start from the initial scores rather than refuse to run.
            let aside = path.with_extension(format!(
                "json.corrupt-{}",
                crate::time::compact(crate::time::now())
            ));
            std::fs::rename(path, &aside).map_err(|source| TrustError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            tracing::error!(file = %path.display(), moved_to = %aside.display(), error = %e,
                "trust scores unreadable; moved aside, starting from the initial scores");
            audit.append(
                "trust.reset",
                json!({ "reason": e.to_string(), "moved_to": aside.display().to_string() }),
            )?;
            Ok(BTreeMap::new())
        }
    }
}

impl TrustLedger {
    /// Opens the ledger persisted at `path` (`trust.json`), publishing on `bus` and
    /// recording to `audit`.
    pub fn open(
        bus: Bus,
        audit: Arc<AuditLog>,
        path: &Path,
        config: &TrustConfig,
    ) -> Result<TrustLedger, TrustError> {
        let scores = load(path, &audit)?;
        Ok(TrustLedger {
            bus,
            audit,
            path: path.to_path_buf(),
            config: config.clone(),
            scores: Mutex::new(scores),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &TrustConfig {
        &self.config
    }

    /// The score of `component` (the initial score if it has none yet).
    pub fn score(&self, component: &str) -> f64 {
        self.scores
            .lock()
            .get(component)
            .copied()
            .unwrap_or(self.config.initial)
    }

    /// Every component's score, by name.
    pub fn all(&self) -> BTreeMap<String, f64> {
        self.scores.lock().clone()
    }

    /// Components whose score is below the threshold, with their score.
    pub fn below_threshold(&self) -> Vec<(String, f64)> {
        self.scores
            .lock()
            .iter()
            .filter(|(_, s)| **s < self.config.threshold)
            .map(|(c, s)| (c.clone(), *s))
            .collect()
    }

    /// A successful remediation: `+reward`.
    pub fn reward(&self, component: &str, reason: &str) -> Result<TrustUpdate, TrustError> {
        self.adjust(component, Change::Reward, reason)
    }

    /// A failed remediation: `-failure_penalty`.
    pub fn penalize(&self, component: &str, reason: &str) -> Result<TrustUpdate, TrustError> {
        self.adjust(component, Change::Failure, reason)
    }

    /// An incident repeated while open: `-repeat_penalty`.
    pub fn penalize_repeat(
        &self,
        component: &str,
        reason: &str,
    ) -> Result<TrustUpdate, TrustError> {
        self.adjust(component, Change::RepeatedIncident, reason)
    }

    /// Applies `change`. When the score moves, it is persisted, published as
    /// `trust.score.update` and audited; at a bound (1.0 rewarded, 0.0 penalised) nothing
    /// changes and the update says `delta: 0`.
    pub fn adjust(
        &self,
        component: &str,
        change: Change,
        reason: &str,
    ) -> Result<TrustUpdate, TrustError> {
        let mut scores = self.scores.lock();
        let previous = scores
            .get(component)
            .copied()
            .unwrap_or(self.config.initial);
        let score = apply(previous, change, &self.config);
        let update = TrustUpdate {
            component: component.to_owned(),
            score,
            previous,
            delta: score - previous,
            reason: reason.to_owned(),
        };
        if score == previous {
            return Ok(update);
        }
        let mut next = scores.clone();
        next.insert(component.to_owned(), score);
        self.persist(&next)?;
        *scores = next;
        // Published and audited under the lock, so both see changes in order.
        self.bus
            .emit(Topic::TrustScoreUpdate, Some(component), &update);
        let data = serde_json::to_value(&update).unwrap_or_default();
        self.audit.append("trust.score.update", data)?;
        Ok(update)
    }

    fn persist(&self, scores: &BTreeMap<String, f64>) -> Result<(), TrustError> {
        let file = TrustFile {
            version: 1,
            updated_at: crate::time::rfc3339(crate::time::now()),
            scores: scores.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        crate::state::atomic_write(&self.path, &bytes).map_err(|source| TrustError::Io {
            path: self.path.clone(),
            source,
        })
    }
}
