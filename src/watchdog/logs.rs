//! `grace logs`: `watchdog.log` and `logs/grace.jsonl` merged by time, one readable line
//! per record, optionally following both files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The last `n` lines of the log at `path`, reaching into its rotated files
/// (`path.1`, ...) when the active one has fewer.
fn last_records(path: &Path, n: usize) -> Vec<String> {
    let mut lines = last_lines(path, n).0;
    for older in crate::telemetry::rotated_files(path) {
        if lines.len() >= n {
            break;
        }
        let mut more = last_lines(&older, n - lines.len()).0;
        more.append(&mut lines);
        lines = more;
    }
    lines
}

/// The last `n` lines of `path` and the file's length (where following starts).
fn last_lines(path: &Path, n: usize) -> (Vec<String>, u64) {
    let Ok(mut f) = File::open(path) else {
        return (Vec::new(), 0);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
            return (Vec::new(), len);
        }
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        if lines.len() >= n || start == 0 {
            let skip = lines.len().saturating_sub(n);
            return (lines[skip..].iter().map(|l| l.to_string()).collect(), len);
        }
        window *= 4;
    }
}

fn sources(paths: &StatePaths) -> [(&'static str, PathBuf); 2] {
    [
        ("watchdog", paths.watchdog_log()),
        ("serve", paths.log_file()),
    ]
}

/// The last `n` records of both logs, merged in time order.
pub fn tail(paths: &StatePaths, n: usize) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = Vec::new();
    for (name, p) in sources(paths) {
        all.extend(last_records(&p, n).iter().map(|l| render(name, l)));
    }
    // Stable: lines without a timestamp keep their place after the one before them.
    let mut last = String::new();
    for l in &mut all {
        if l.timestamp.is_empty() {
            l.timestamp = last.clone();
        } else {
            last = l.timestamp.clone();
        }
    }
    all.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let skip = all.len().saturating_sub(n);
    all.split_off(skip)
}

/// Prints the last `n` records, then (with `follow`) new records of either log as they
/// are appended, until the writer fails (the reader went away).
pub fn print(
    paths: &StatePaths,
    n: usize,
    follow: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for l in tail(paths, n) {
        writeln!(out, "{}", l.text)?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut offsets: Vec<u64> = sources(paths)
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    let mut partial = [String::new(), String::new()];
    loop {
        for (i, (name, p)) in sources(paths).iter().enumerate() {
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            if len < offsets[i] {
                offsets[i] = 0; // truncated or replaced
                partial[i].clear();
            }
            if len == offsets[i] {
                continue;
            }
            let Ok(mut f) = File::open(p) else { continue };
            let mut buf = Vec::new();
            if f.seek(SeekFrom::Start(offsets[i])).is_err() || f.read_to_end(&mut buf).is_err() {
                continue;
            }
            offsets[i] += buf.len() as u64;
            partial[i].push_str(&String::from_utf8_lossy(&buf));
            while let Some(pos) = partial[i].find('\n') {
                let line: String = partial[i].drain(..=pos).collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    writeln!(out, "{}", render(name, line).text)?;
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
        let lines = tail(&paths, 10);
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
        assert_eq!(tail(&paths, 1).len(), 1);
        let mut out = Vec::new();
        print(&paths, 2, false, &mut out).expect("print");
        assert_eq!(String::from_utf8(out).expect("utf8").lines().count(), 2);
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
        let r = print(&paths, 10, true, &mut sink);
        writer.join().expect("writer");
        assert!(r.is_err(), "follow ends only when the reader goes away");
        assert!(sink.text.contains("late"), "{}", sink.text);
    }
}
