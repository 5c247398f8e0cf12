//! `grace logs --level/--source/--since`: which records to show, decided on the fields
//! every record carries (`level`, `target`, `timestamp`) and tolerant of records that
//! lack them.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// A log level, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// The level a record's `level` field names (`INFO`, `warn`, `warning`, journald's
    /// `err`...), if it names one.
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" | "notice" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" | "err" | "crit" | "critical" | "alert" | "emerg" | "fatal" => LogLevel::Error,
            _ => return None,
        })
    }
}

/// The records `grace logs` shows. A line that is not a JSON record (a panic message
/// on stderr) has no level nor target: only `--since` (by the time of the record before
/// it) and the log it is in (`--source serve|watchdog`) apply to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// The least severe level shown.
    pub level: Option<LogLevel>,
    /// `serve`, `watchdog`, a target (`grace::http`, or `http`) with its submodules, or
    /// a kernel or component named in the record.
    pub source: Option<String>,
    /// The earliest time shown.
    pub since: Option<DateTime<Utc>>,
}

/// A record's time, from its `timestamp` (RFC 3339).
pub fn record_time(m: &Map<String, Value>) -> Option<DateTime<Utc>> {
    let ts = m.get("timestamp")?.as_str()?;
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses `--since`: a duration back from `now` (`10m`, `1h 30m`, humantime's syntax),
/// an RFC 3339 timestamp, `YYYY-MM-DD HH:MM:SS` (UTC) or a date (its midnight, UTC).
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        let back = chrono::Duration::from_std(d).map_err(|_| format!("--since {s}: too long"))?;
        return now
            .checked_sub_signed(back)
            .ok_or_else(|| format!("--since {s}: too long"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t.into());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "--since {s:?} is neither a duration (`10m`, `1h 30m`) nor a timestamp \
         (`2026-01-31T08:00:00Z`, `2026-01-31 08:00:00` in UTC, `2026-01-31`)"
    ))
}

/// `grace::http::server` and `http::server` name the same module.
fn module(path: &str) -> &str {
    path.strip_prefix("grace::").unwrap_or(path)
}

impl LogFilter {
    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.level.is_none() && self.source.is_none() && self.since.is_none()
    }

    /// Whether the record `raw` of the log `log` (`serve` or `watchdog`) is shown;
    /// `inherited` is the time of the record before it, for lines without their own.
    pub fn matches(&self, log: &str, raw: &str, inherited: Option<DateTime<Utc>>) -> bool {
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => self.matches_record(log, &m),
            _ => {
                self.source.as_deref().is_none_or(|s| s == log)
                    && self
                        .since
                        .is_none_or(|since| inherited.is_none_or(|t| t >= since))
            }
        }
    }

    /// Whether the JSON record `m` of the log `log` is shown.
    pub fn matches_record(&self, log: &str, m: &Map<String, Value>) -> bool {
        let text = |k: &str| m.get(k).and_then(Value::as_str);
        if let Some(min) = self.level {
            if text("level")
                .and_then(LogLevel::parse)
                .is_some_and(|l| l < min)
            {
                return false;
            }
        }
        if let Some(since) = self.since {
            if record_time(m).is_some_and(|t| t < since) {
                return false;
            }
        }
        let Some(want) = self.source.as_deref() else {
            return true;
        };
        if want == log {
            return true;
        }
        let want = module(want);
        let target = module(text("target").unwrap_or(log));
        if target == want
            || target
                .strip_prefix(want)
                .is_some_and(|rest| rest.starts_with("::"))
        {
            return true;
        }
        ["kernel", "component", "actor"]
            .iter()
            .any(|k| text(k) == Some(want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn level_keeps_that_level_and_more_severe() {
        let f = LogFilter {
            level: Some(LogLevel::Warn),
            ..LogFilter::default()
        };
        assert!(!f.matches_record("serve", &rec(serde_json::json!({"level": "INFO"}))));
        assert!(f.matches_record("serve", &rec(serde_json::json!({"level": "WARN"}))));
        assert!(f.matches_record("serve", &rec(serde_json::json!({"level": "error"}))));
        assert!(
            f.matches_record("serve", &rec(serde_json::json!({"message": "no level"}))),
            "a record without a level is not hidden by a level filter"
        );
    }

    #[test]
    fn source_names_a_log_a_target_with_its_submodules_or_a_kernel() {
        let f = |s: &str| LogFilter {
            source: Some(s.to_owned()),
            ..LogFilter::default()
        };
        let http = rec(serde_json::json!({"target": "grace::http::server"}));
        assert!(f("serve").matches_record("serve", &http));
        assert!(!f("watchdog").matches_record("serve", &http));
        assert!(f("grace::http").matches_record("serve", &http));
        assert!(f("http").matches_record("serve", &http));
        assert!(f("http::server").matches_record("serve", &http));
        assert!(!f("htt").matches_record("serve", &http));
        assert!(!f("grace::tree").matches_record("serve", &http));
        let k = rec(serde_json::json!({"target": "grace::kernel", "kernel": "kv_store"}));
        assert!(f("kv_store").matches_record("serve", &k));
        assert!(
            f("watchdog").matches_record("watchdog", &rec(serde_json::json!({"event": "x"}))),
            "a watchdog record without a target is the watchdog's"
        );
        assert!(f("serve").matches("serve", "thread 'main' panicked", None));
        assert!(!f("http").matches("serve", "thread 'main' panicked", None));
    }

    #[test]
    fn since_takes_durations_and_timestamps() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).expect(s).to_rfc3339();
        assert_eq!(at("10m"), "2026-01-31T07:50:00+00:00");
        assert_eq!(at("1h 30m"), "2026-01-31T06:30:00+00:00");
        assert_eq!(at("2026-01-30T10:00:00+02:00"), "2026-01-30T08:00:00+00:00");
        assert_eq!(at("2026-01-30 10:00:00"), "2026-01-30T10:00:00+00:00");
        assert_eq!(at("2026-01-30"), "2026-01-30T00:00:00+00:00");
        let e = parse_since("yesterday", now).expect_err("not a time");
        assert!(e.contains("neither a duration"), "{e}");

        let f = LogFilter {
            since: Some(now),
            ..LogFilter::default()
        };
        let old = r#"{"timestamp":"2026-01-31T07:59:59.999999Z","level":"ERROR"}"#;
        let new = r#"{"timestamp":"2026-01-31T08:00:00.000001Z","level":"INFO"}"#;
        assert!(!f.matches("serve", old, None));
        assert!(f.matches("serve", new, None));
        let before = Some(now - chrono::Duration::seconds(1));
        assert!(!f.matches("serve", "panicked", before));
        assert!(f.matches("serve", "panicked", Some(now)));
    }
}
