//! `grace logs`: `watchdog.log` and `logs/grace.jsonl` (and their rotated files) merged
//! by time, one readable line per record, filtered, optionally following both files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::log_files::{log_files, Follower, LinesBackwards};
use super::log_filter::{record_time, LogFilter};
use crate::state::StatePaths;
use crate::telemetry::Record;

/// One record, ready to print.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLine {
    /// RFC 3339 (sorts in time order); empty for lines that are not JSON.
    pub timestamp: String,
    /// `watchdog` or `serve`.
    pub source: &'static str,
    /// The readable line.
    pub text: String,
}

/// Renders one raw line of `source`'s log: `TIME LEVEL source [span] message k=v ...`.
/// Lines that are not records (a panic message on stderr) are shown as they are.
pub fn render(source: &'static str, raw: &str) -> LogLine {
    let Some(r) = Record::parse(raw) else {
        return LogLine {
            timestamp: String::new(),
            source,
            text: format!("{source:<8} {raw}"),
        };
    };
    let text = format!(
        "{} {:<5} {source:<8} {}",
        r.timestamp,
        r.level.as_str(),
        r.body()
    );
    LogLine {
        timestamp: r.timestamp,
        source,
        text,
    }
}

fn sources(paths: &StatePaths) -> [(&'static str, PathBuf); 2] {
    [
        ("watchdog", paths.watchdog_log()),
        ("serve", paths.log_file()),
    ]
}

/// The JSON object a line holds, if it is one.
fn object(raw: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The last `n` records of the log `name` (its rotated files included) that `filter`
/// shows, oldest first. A line that is not JSON takes the time of the record before it.
fn last_records(name: &'static str, live: &Path, n: usize, filter: &LogFilter) -> Vec<LogLine> {
    let mut newest_first: Vec<LogLine> = Vec::new();
    // Lines that are not JSON, newest first, waiting for the record before them.
    let mut pending: Vec<String> = Vec::new();
    let flush =
        |pending: &mut Vec<String>, out: &mut Vec<LogLine>, m: Option<&Map<String, Value>>| {
            let at = m.and_then(record_time);
            let ts = m
                .and_then(|m| m.get("timestamp")?.as_str())
                .unwrap_or("")
                .to_owned();
            for raw in pending.drain(..) {
                if filter.matches(name, &raw, at) {
                    let mut line = render(name, &raw);
                    line.timestamp = ts.clone();
                    out.push(line);
                }
            }
        };
    'files: for file in log_files(live).iter().rev() {
        let Ok(lines) = LinesBackwards::open(file) else {
            continue;
        };
        for raw in lines {
            let Some(m) = object(&raw) else {
                pending.push(raw);
                continue;
            };
            flush(&mut pending, &mut newest_first, Some(&m));
            if filter.matches_record(name, &m) {
                newest_first.push(render(name, &raw));
            }
            let older = filter
                .since
                .is_some_and(|since| record_time(&m).is_some_and(|t| t < since));
            if newest_first.len() >= n || older {
                break 'files;
            }
        }
    }
    flush(&mut pending, &mut newest_first, None);
    newest_first.truncate(n);
    newest_first.reverse();
    newest_first
}

/// The last `n` records of both logs that `filter` shows, merged in time order.
pub fn tail(paths: &StatePaths, n: usize, filter: &LogFilter) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = Vec::new();
    for (name, p) in sources(paths) {
        all.extend(last_records(name, &p, n, filter));
    }
    // Stable: lines without a timestamp keep their place.
    all.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let skip = all.len().saturating_sub(n);
    all.split_off(skip)
}

/// Prints the last `n` records that `filter` shows, then (with `follow`) new ones of
/// either log as they are appended, until the writer fails (the reader went away).
pub fn print(
    paths: &StatePaths,
    n: usize,
    follow: bool,
    filter: &LogFilter,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // Each log from its current end, with the time of its last record (for lines that
    // are not JSON).
    let mut followed: Vec<(&str, Follower, Option<chrono::DateTime<chrono::Utc>>)> = sources(paths)
        .into_iter()
        .map(|(name, p)| (name, Follower::at_end(p), None))
        .collect();
    for l in tail(paths, n, filter) {
        writeln!(out, "{}", l.text)?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        for (name, f, last) in &mut followed {
            for line in f.read_new() {
                if let Some(m) = object(&line) {
                    *last = record_time(&m).or(*last);
                }
                if filter.matches(name, &line, *last) {
                    writeln!(out, "{}", render(name, &line).text)?;
                }
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_both_logs_in_time_order() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        paths.create().expect("create");
        let wd = |t: &str, level: &str, msg: &str, fields: &str| {
            format!(
                "{{\"timestamp\":\"2025-01-01T00:00:0{t}.000000Z\",\"level\":\"{level}\",\
                 \"target\":\"grace::watchdog\",\"message\":\"{msg}\",\"pid\":1,\
                 \"fields\":{fields}}}\n"
            )
        };
        // The first record is in the rotated file already.
        std::fs::write(
            crate::telemetry::rotated(&paths.watchdog_log(), 1),
            wd("1", "INFO", "serve.started", "{\"pid\":7}"),
        )
        .expect("write");
        std::fs::write(
            paths.watchdog_log(),
            wd(
                "3",
                "WARN",
                "serve.exited",
                "{\"reason\":\"killed by SIGKILL\"}",
            ),
        )
        .expect("write");
        std::fs::write(
            paths.log_file(),
            "{\"timestamp\":\"2025-01-01T00:00:02.000000Z\",\"level\":\"INFO\",\"message\":\"serve starting\",\"target\":\"grace::serve\",\"pid\":2,\"fields\":{},\"span\":{\"name\":\"kernel\",\"kernel\":\"http\"}}\nthread 'main' panicked\n",
        )
        .expect("write");
        let lines = tail(&paths, 10, &LogFilter::default());
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert!(texts[0].contains("serve.started pid=7"), "{texts:?}");
        assert!(
            texts[1].contains("serve    [kernel=http] serve starting"),
            "{texts:?}"
        );
        assert!(texts[2].contains("panicked"), "{texts:?}");
        assert!(
            texts[3].contains("serve.exited reason=\"killed by SIGKILL\""),
            "{texts:?}"
        );
        assert_eq!(tail(&paths, 1, &LogFilter::default()).len(), 1);
        let mut out = Vec::new();
        print(&paths, 2, false, &LogFilter::default(), &mut out).expect("print");
        assert_eq!(String::from_utf8(out).expect("utf8").lines().count(), 2);
    }

    #[test]
    fn reads_rotated_files_and_filters_by_level_source_and_time() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        paths.create().expect("create");
        let rec = |s: u32, level: &str, target: &str, msg: &str| {
            format!(
                "{{\"timestamp\":\"2026-01-01T00:00:{s:02}.000000Z\",\"level\":\"{level}\",\"target\":\"{target}\",\"message\":\"{msg}\"}}\n"
            )
        };
        let rotated = paths.log_file().with_extension("jsonl.1");
        std::fs::write(
            &rotated,
            rec(1, "ERROR", "grace::http::server", "old error")
                + &rec(2, "INFO", "grace::tree", "old info"),
        )
        .expect("write");
        let past = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&rotated)
            .and_then(|f| f.set_modified(past))
            .expect("mtime");
        std::fs::write(
            paths.log_file(),
            rec(3, "WARN", "grace::http::middleware", "new warning")
                + "thread 'tokio' panicked\n"
                + &rec(4, "DEBUG", "grace::tree", "new debug"),
        )
        .expect("write");
        let shown = |f: LogFilter, n: usize| -> Vec<String> {
            tail(&paths, n, &f).into_iter().map(|l| l.text).collect()
        };
        let all = shown(LogFilter::default(), 10);
        assert_eq!(all.len(), 5, "{all:?}");
        assert!(
            all[0].contains("old error") && all[4].contains("new debug"),
            "{all:?}"
        );
        assert!(all[3].contains("panicked"), "{all:?}");
        let last2 = shown(LogFilter::default(), 2);
        assert!(
            last2[0].contains("panicked") && last2[1].contains("new debug"),
            "{last2:?}"
        );

        let warn = shown(
            LogFilter {
                level: Some(super::super::log_filter::LogLevel::Warn),
                ..LogFilter::default()
            },
            10,
        );
        assert_eq!(warn.len(), 3, "{warn:?}");
        assert!(warn[0].contains("old error") && warn[1].contains("new warning"));
        let http = shown(
            LogFilter {
                source: Some("http".to_owned()),
                ..LogFilter::default()
            },
            10,
        );
        assert_eq!(http.len(), 2, "{http:?}");
        let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:03Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let recent = shown(
            LogFilter {
                since: Some(since),
                ..LogFilter::default()
            },
            10,
        );
        assert_eq!(recent.len(), 3, "{recent:?}");
        assert!(recent[0].contains("new warning"), "{recent:?}");
    }

    /// A writer that takes lines until it has `limit`, then fails (a closed pipe).
    struct Sink {
        text: String,
        limit: usize,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.text.lines().count() >= self.limit {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.text.push_str(&String::from_utf8_lossy(b));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn follow_prints_records_appended_later() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        paths.create().expect("create");
        std::fs::write(
            paths.watchdog_log(),
            "{\"timestamp\":\"t1\",\"level\":\"INFO\",\"target\":\"t\",\"message\":\"a\",\"pid\":1}\n",
        )
        .expect("write");
        let log = paths.log_file();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("open");
            f.write_all(b"{\"timestamp\":\"t2\",\"level\":\"INFO\",\"target\":\"t\",\"message\":\"late\",\"pid\":1}\n")
                .expect("append");
        });
        let mut sink = Sink {
            text: String::new(),
            limit: 2,
        };
        let r = print(&paths, 10, true, &LogFilter::default(), &mut sink);
        writer.join().expect("writer");
        assert!(r.is_err(), "follow ends only when the reader goes away");
        assert!(sink.text.contains("late"), "{}", sink.text);
    }

    #[test]
    fn follow_goes_on_across_a_rotation_and_filters() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        paths.create().expect("create");
        let log = paths.log_file();
        std::fs::write(&log, "").expect("create log");
        let writer = std::thread::spawn(move || {
            let append = |p: &Path, line: &str| {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .expect("open");
                f.write_all(line.as_bytes()).expect("append");
            };
            std::thread::sleep(Duration::from_millis(300));
            append(&log, "{\"level\":\"INFO\",\"message\":\"hidden\"}\n");
            // Written after the reader's last look, just before the rotation.
            append(
                &log,
                "{\"level\":\"ERROR\",\"message\":\"before rotation\"}\n",
            );
            std::fs::rename(&log, log.with_extension("jsonl.1")).expect("rotate");
            append(
                &log,
                "{\"level\":\"ERROR\",\"message\":\"after rotation\"}\n",
            );
        });
        let mut sink = Sink {
            text: String::new(),
            limit: 2,
        };
        let filter = LogFilter {
            level: Some(super::super::log_filter::LogLevel::Error),
            ..LogFilter::default()
        };
        let r = print(&paths, 10, true, &filter, &mut sink);
        writer.join().expect("writer");
        assert!(r.is_err(), "follow ends only when the reader goes away");
        let lines: Vec<&str> = sink.text.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("before rotation"), "{lines:?}");
        assert!(lines[1].contains("after rotation"), "{lines:?}");
    }
}
