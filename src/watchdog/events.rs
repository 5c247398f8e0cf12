//! `watchdog.log`: the watchdog's own records, one JSON object per line
//! (`{"timestamp", "level", "event", "watchdog_pid", ...fields}`), appended with one
//! write per line so concurrent writers never interleave inside a record.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    echo: bool,
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
            echo: false,
        })
    }

    /// Also writes every record to stderr (a foreground watchdog: the terminal or the
    /// journal sees what the file gets).
    pub fn with_echo(mut self, on: bool) -> EventLog {
        self.echo = on;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record: `event` with `fields` (an object; other values go under
    /// `data`). Also emits it as a tracing event. A failed write is reported on tracing
    /// only: losing a log line must never stop the watchdog.
    pub fn record(&self, level: Level, event: &str, fields: Value) {
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
        let line = Value::Object(m).to_string();
        match level {
            Level::Info => tracing::info!(target: "grace::watchdog", event, record = %line),
            Level::Warn => tracing::warn!(target: "grace::watchdog", event, record = %line),
            Level::Error => tracing::error!(target: "grace::watchdog", event, record = %line),
        }
        if self.echo {
            eprintln!("{line}");
        }
        let mut buf = line.into_bytes();
        buf.push(b'\n');
        if let Err(e) = self.file.lock().write_all(&buf) {
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
