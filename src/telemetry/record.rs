//! The one log record schema of serve (`logs/grace.jsonl`) and the watchdog
//! (`watchdog.log`), one JSON object per line:
//!
//! ```text
//! {"timestamp": RFC 3339 (µs), "level": "INFO", "target": "grace::serve",
//!  "message": "serve ready", "pid": 4242, "fields": {...},
//!  "span": {"name": "kernel", "kernel": "http", ...}}
//! ```
//!
//! `span` is there only for records made inside a span; it names the innermost one and
//! carries the fields of every span around the record. The same record renders as one
//! readable line for stderr, the journal and `grace logs`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How severe a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Something failed and needs a human.
    Error,
    /// Something failed and is being handled.
    Warn,
    /// Normal operation.
    Info,
    /// Detail for debugging.
    Debug,
    /// Finest detail.
    Trace,
}

impl Level {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    /// The syslog priority journald reads from a `<N>` line prefix (`journalctl -p`).
    pub fn syslog_priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        }
    }

    fn ansi(self) -> &'static str {
        match self {
            Level::Error => "\x1b[31m",
            Level::Warn => "\x1b[33m",
            Level::Info => "\x1b[32m",
            Level::Debug => "\x1b[34m",
            Level::Trace => "\x1b[35m",
        }
    }
}

impl From<tracing::Level> for Level {
    fn from(l: tracing::Level) -> Level {
        match l {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        }
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When it was made (RFC 3339, microseconds, UTC).
    pub timestamp: String,
    /// Its level.
    pub level: Level,
    /// Where it comes from: the Rust module path (`grace::serve`), `grace::watchdog`
    /// for the watchdog's records.
    #[serde(default)]
    pub target: String,
    /// What happened: a sentence, or an event name (`serve.started`, `actor_metrics`).
    /// Lines of earlier versions named the watchdog's event `event`.
    #[serde(default, alias = "event")]
    pub message: String,
    /// The process that wrote it (0 in lines of earlier versions, which had none).
    #[serde(default)]
    pub pid: u32,
    /// The structured details.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// The spans around it: `name` is the innermost span's, the other keys are the
    /// fields of all of them (`kernel`, `supervisor`, `incident`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Map<String, Value>>,
}

/// How [`Record::text`] renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextStyle {
    /// Starts with the timestamp (not for the journal, which stamps lines itself).
    pub timestamp: bool,
    /// Colours the level with ANSI escapes.
    pub ansi: bool,
}

impl Record {
    /// A record made now by this process.
    pub fn now(level: Level, target: &str, message: &str, fields: Map<String, Value>) -> Record {
        Record {
            timestamp: crate::time::rfc3339(crate::time::now()),
            level,
            target: target.to_owned(),
            message: message.to_owned(),
            pid: std::process::id(),
            fields,
            span: None,
        }
    }

    /// The JSON line, newline included.
    pub fn json_line(&self) -> Vec<u8> {
        let mut buf = serde_json::to_vec(self).unwrap_or_else(|e| {
            serde_json::json!({ "message": format!("unserializable log record: {e}") })
                .to_string()
                .into_bytes()
        });
        buf.push(b'\n');
        buf
    }

    /// Parses one line of a log; None when it is not a record (a panic message that
    /// reached a captured stderr, a torn line).
    pub fn parse(line: &str) -> Option<Record> {
        serde_json::from_str(line).ok()
    }

    /// One readable line (no newline): `TIME LEVEL [span] message key=value ...`.
    pub fn text(&self, style: TextStyle) -> String {
        let mut s = String::with_capacity(128);
        if style.timestamp {
            s.push_str(&self.timestamp);
            s.push(' ');
        }
        if style.ansi {
            let _ = write!(s, "{}{:<5}\x1b[0m ", self.level.ansi(), self.level.as_str());
        } else {
            let _ = write!(s, "{:<5} ", self.level.as_str());
        }
        s.push_str(&self.body());
        s
    }

    /// The line without time and level: `[span] message key=value ...`.
    pub fn body(&self) -> String {
        let mut s = String::with_capacity(96);
        if let Some(span) = &self.span {
            let inner: Vec<String> = span
                .iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect();
            if !inner.is_empty() {
                let _ = write!(s, "[{}] ", inner.join(" "));
            }
        }
        s.push_str(&self.message);
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={}", plain(v));
        }
        s
    }
}

/// A value as text: strings bare unless empty or spaced (then quoted), the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(x) if !x.is_empty() && !x.contains(char::is_whitespace) => x.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_round_trips_and_renders() {
        let mut r = Record::now(
            Level::Warn,
            "grace::watchdog",
            "serve.exited",
            json!({"reason": "killed by SIGKILL", "pid": 7})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        r.span = Some(
            json!({"name": "kernel", "kernel": "http"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let line = r.json_line();
        assert_eq!(line.last(), Some(&b'\n'));
        let text = String::from_utf8(line).expect("utf8");
        let back = Record::parse(text.trim_end()).expect("parses");
        assert_eq!(back, r);
        let shown = r.text(TextStyle::default());
        assert_eq!(
            shown,
            "WARN  [kernel=http] serve.exited pid=7 reason=\"killed by SIGKILL\""
        );
        assert!(Record::parse("thread 'main' panicked").is_none());
        assert_eq!(Level::Error.syslog_priority(), 3);
        assert_eq!(Level::Debug.syslog_priority(), 7);
    }
}
