//! `watchdog.log`: the watchdog's own records, one JSON object per line
//! (`{"timestamp", "level", "event", "watchdog_pid", ...fields}`), appended with one
//! write per line so concurrent writers never interleave inside a record.
//!
//! A foreground watchdog also echoes every record to stderr (its info records to
//! stdout with `GRACE_LOG_STDOUT=1`). Stderr may fail at any
//! time (a closed pipe, a hung-up terminal): such writes are dropped and counted
//! ([`crate::telemetry::dropped_stderr_writes`]), and the first loss is recorded in the
//! file, never a panic.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::WatchdogError;

/// The level of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something failed and is being handled.
    Warn,
    /// Something failed and needs a human.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// An append-only JSON-lines log.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<File>,
    path: PathBuf,
    echo: AtomicBool,
    echo_failed: AtomicBool,
}

impl EventLog {
    /// Opens (creates) the log for appending.
    pub fn open(path: &Path) -> Result<EventLog, WatchdogError> {
        let err = |source| WatchdogError::Log {
            path: path.to_path_buf(),
            source,
        };
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(EventLog {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            echo: AtomicBool::new(false),
            echo_failed: AtomicBool::new(false),
        })
    }

    /// Also writes every record to stderr (a foreground watchdog: the terminal or the
    /// journal sees what the file gets).
    pub fn with_echo(self, on: bool) -> EventLog {
        self.set_echo(on);
        self
    }

    /// Turns the echo to stderr on or off (off once the terminal is gone).
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, Ordering::Relaxed);
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record: `event` with `fields` (an object; other values go under
    /// `data`). Also emits it as a tracing event, and echoes it to stderr when asked. A
    /// failed write is reported on tracing (the file) or counted (stderr) only: losing a
    /// log line must never stop the watchdog.
    pub fn record(&self, level: Level, event: &str, fields: Value) {
        let buf = Self::line(level, event, fields);
        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]);
        match level {
            Level::Info => tracing::info!(target: "grace::watchdog", event, record = %line),
            Level::Warn => tracing::warn!(target: "grace::watchdog", event, record = %line),
            Level::Error => tracing::error!(target: "grace::watchdog", event, record = %line),
        }
        if self.echo.load(Ordering::Relaxed) {
            let serious = !matches!(level, Level::Info);
            if let Err(e) = crate::telemetry::write_log_line(serious, &buf) {
                if !self.echo_failed.swap(true, Ordering::Relaxed) {
                    self.append(&Self::line(
                        Level::Warn,
                        "watchdog.output_lost",
                        serde_json::json!({"error": e.to_string(),
                            "effect": "records still go to this file; later stderr failures are only counted (dropped_stderr_writes)"}),
                    ));
                }
            }
        }
        self.append(&buf);
    }

    fn line(level: Level, event: &str, fields: Value) -> Vec<u8> {
        let mut m = Map::new();
        m.insert(
            "timestamp".into(),
            crate::time::rfc3339(crate::time::now()).into(),
        );
        m.insert("level".into(), level.as_str().into());
        m.insert("event".into(), event.into());
        m.insert("watchdog_pid".into(), std::process::id().into());
        match fields {
            Value::Object(f) => m.extend(f),
            Value::Null => {}
            other => {
                m.insert("data".into(), other);
            }
        }
        let mut buf = Value::Object(m).to_string().into_bytes();
        buf.push(b'\n');
        buf
    }

    fn append(&self, buf: &[u8]) {
        if let Err(e) = self.file.lock().write_all(buf) {
            tracing::error!(error = %e, path = %self.path.display(), "cannot append to watchdog.log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_object_per_line() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("watchdog.log");
        let log = EventLog::open(&p).expect("open");
        log.record(Level::Info, "serve.started", serde_json::json!({"pid": 7}));
        log.record(Level::Warn, "serve.exited", Value::Null);
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "serve.started");
        assert_eq!(lines[0]["pid"], 7);
        assert_eq!(lines[1]["level"], "WARN");
    }
}
