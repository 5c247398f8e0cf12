//! The report of a chaos run: JSON (`report.json`), a summary table for people, and a
//! timeline picture per scenario (`<name>.svg`).

mod svg;
mod table;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use svg::timeline_svg;
pub use table::summary_table;

use super::measure::{Assessment, Timeline};
use super::ChaosError;

/// One scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its seed.
    pub seed: u64,
    /// What it ran against (a URL, or `spawned`).
    pub target: String,
    /// When injection started (RFC 3339).
    pub started_at: String,
    /// The SLO: longest recovery, seconds.
    pub max_recovery_s: f64,
    /// The SLO: longest detection, seconds.
    pub max_detection_s: Option<f64>,
    /// Why it could not run at all (no steady state, no instance), if so.
    pub error: Option<String>,
    /// Why injection stopped early, if it did.
    pub aborted: Option<String>,
    /// The verdict and per-fault measurements.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// What was observed.
    pub timeline: Timeline,
    /// What cleanup did.
    pub cleanup: Vec<String>,
}

impl ScenarioReport {
    /// Whether it passed (ran, met its SLO, came back, met its expectations).
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.assessment.passed
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// When the report was written (RFC 3339).
    pub generated_at: String,
    /// Whether every scenario passed.
    pub passed: bool,
    /// Per scenario.
    pub scenarios: Vec<ScenarioReport>,
}

impl RunReport {
    /// A report over `scenarios`.
    pub fn new(scenarios: Vec<ScenarioReport>) -> RunReport {
        RunReport {
            generated_at: crate::time::rfc3339(crate::time::now()),
            passed: scenarios.iter().all(ScenarioReport::passed),
            scenarios,
        }
    }

    /// Writes `report.json`, `summary.txt` and one `<name>.svg` per scenario into
    /// `dir`; returns the files written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, ChaosError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ChaosError::io("cannot create report directory", dir, e))?;
        let mut written = Vec::new();
        let mut put = |name: String, bytes: &[u8]| -> Result<(), ChaosError> {
            let path = dir.join(name);
            crate::state::atomic_write(&path, bytes)
                .map_err(|e| ChaosError::io("cannot write report", &path, e))?;
            written.push(path);
            Ok(())
        };
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| ChaosError::io("cannot encode report", dir, std::io::Error::other(e)))?;
        put("report.json".to_owned(), &json)?;
        put("summary.txt".to_owned(), summary_table(self).as_bytes())?;
        for s in &self.scenarios {
            put(
                format!("{}.svg", file_stem(&s.name)),
                timeline_svg(s).as_bytes(),
            )?;
        }
        Ok(written)
    }
}

/// A file-name-safe form of a scenario name.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
