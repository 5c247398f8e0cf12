//! The `[logging]` section of `grace.toml`: how big and old the log files may get, and
//! what goes to stderr.

use std::time::Duration;

use serde::Deserialize;

use super::rotate::Rotation;
use super::stderr::StderrFormat;
use crate::config::ByteSize;

/// Settings of the logging section. They bound `logs/grace.jsonl` and `watchdog.log`
/// alike, and the captured output files of a background watchdog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A log file is rotated before a record would take it past this (default 10 MB).
    pub max_file_size: ByteSize,
    /// Rotated files kept per log, `.1` newest (default 5).
    pub max_files: usize,
    /// Records older than this are deleted with their file (default 14 days).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// What serve and a foreground watchdog write to stderr: `auto` (default), `text`,
    /// `json` or `off`; `GRACE_LOG_STDERR` overrides.
    pub stderr: StderrFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            max_file_size: ByteSize(10_000_000),
            max_files: 5,
            max_age: Duration::from_secs(14 * 24 * 3600),
            stderr: StderrFormat::Auto,
        }
    }
}

impl LoggingConfig {
    /// The rotation of every log file.
    pub fn rotation(&self) -> Rotation {
        Rotation {
            max_size: self.max_file_size.bytes().max(1),
            max_files: self.max_files,
            max_age: self.max_age,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_ages_and_stderr() {
        let c: LoggingConfig = toml::from_str(
            "max_file_size = \"1MB\"\nmax_files = 2\nmax_age = \"3d\"\nstderr = \"json\"",
        )
        .expect("parse");
        assert_eq!(c.rotation().max_size, 1_000_000);
        assert_eq!(c.max_age, Duration::from_secs(3 * 24 * 3600));
        assert_eq!(c.stderr, StderrFormat::Json);
        assert!(toml::from_str::<LoggingConfig>("stderr = \"loud\"").is_err());
        assert_eq!(
            toml::from_str::<LoggingConfig>("").expect("empty"),
            LoggingConfig::default()
        );
    }
}
