//! `watchdog.log`: the watchdog's own records, in the schema of serve's log
//! ([`crate::telemetry::Record`]: `timestamp`, `level`, `target` `grace::watchdog`,
//! `message` the event name such as `serve.started`, `pid`, `fields`), one JSON object
//! per line, each appended with one write, the file rotated as `[logging]` says.
//!
//! A foreground watchdog also writes every record to stderr, as readable text (with
//! journald priorities when stderr is the journal, its info records to stdout with
//! `GRACE_LOG_STDOUT=1`; see [`crate::telemetry::StderrOut`]).
//! Stderr may fail at any time (a closed pipe, a hung-up terminal): such writes are
//! dropped and counted ([`crate::telemetry::dropped_stderr_writes`]), and the first loss
//! is recorded in the file, never a panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::WatchdogError;
use crate::telemetry::{Record, RotatingFile, Rotation, StderrOut};

pub use crate::telemetry::Level;

/// The target of every watchdog record.
pub const TARGET: &str = "grace::watchdog";

/// An append-only JSON-lines log.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<RotatingFile>,
    path: PathBuf,
    stderr: StderrOut,
    echo: AtomicBool,
    echo_failed: AtomicBool,
}

impl EventLog {
    /// Opens (creates) the log for appending, rotated as `rotation` says.
    pub fn open(path: &Path, rotation: Rotation) -> Result<EventLog, WatchdogError> {
        let file = RotatingFile::open(path, rotation).map_err(|source| WatchdogError::Log {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(EventLog {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            stderr: StderrOut::off(),
            echo: AtomicBool::new(false),
            echo_failed: AtomicBool::new(false),
        })
    }

    /// Also writes every record to stderr as `out` says (a foreground watchdog: the
    /// terminal or the journal sees what the file gets).
    pub fn with_echo(mut self, out: StderrOut) -> EventLog {
        self.echo.store(!out.is_off(), Ordering::Relaxed);
        self.stderr = out;
        self
    }

    /// Turns the echo to stderr off (once the terminal is gone) or back on.
    pub fn set_echo(&self, on: bool) {
        self.echo
            .store(on && !self.stderr.is_off(), Ordering::Relaxed);
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record: `event` with `fields` (an object; other values go under
    /// `data`), and echoes it to stderr when asked. A failed write is counted (stderr)
    /// or dropped (the file) only: losing a log line must never stop the watchdog.
    pub fn record(&self, level: Level, event: &str, fields: Value) {
        let r = Self::make(level, event, fields);
        if self.echo.load(Ordering::Relaxed) {
            if let Err(e) = self.stderr.write(&r) {
                if !self.echo_failed.swap(true, Ordering::Relaxed) {
                    self.append(&Self::make(
                        Level::Warn,
                        "watchdog.output_lost",
                        serde_json::json!({"error": e.to_string(),
                            "effect": "records still go to this file; later stderr failures are only counted (dropped_stderr_writes)"}),
                    ));
                }
            }
        }
        self.append(&r);
    }

    fn make(level: Level, event: &str, fields: Value) -> Record {
        let fields = match fields {
            Value::Object(f) => f,
            Value::Null => Map::new(),
            other => Map::from_iter([("data".to_owned(), other)]),
        };
        Record::now(level, TARGET, event, fields)
    }

    fn append(&self, r: &Record) {
        // Nothing to tell a failure to: the file is where failures are told.
        let _ = self.file.lock().append(&r.json_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_object_per_line() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("watchdog.log");
        let log = EventLog::open(&p, crate::telemetry::LoggingConfig::default().rotation())
            .expect("open");
        log.record(Level::Info, "serve.started", serde_json::json!({"pid": 7}));
        log.record(Level::Warn, "serve.exited", Value::Null);
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "serve.started");
        assert_eq!(lines[0]["target"], "grace::watchdog");
        assert_eq!(lines[0]["fields"]["pid"], 7);
        assert_eq!(lines[0]["pid"], std::process::id());
        assert_eq!(lines[1]["level"], "WARN");
    }
}
