//! Records on stderr: one format per process, never JSON and text mixed.
//!
//! `[logging] stderr` (or `GRACE_LOG_STDERR`, which wins) chooses `auto`, `text`,
//! `json` or `off`. `auto` writes readable text: with the time and coloured levels on a
//! terminal (no colour with `NO_COLOR`), without the time in the journal, which stamps
//! lines itself. When stderr is the journal (`JOURNAL_STREAM` names the device and inode
//! stderr is open on, as systemd sets it) every line starts with its syslog priority,
//! `<3>` error, `<4>` warning, `<6>` info, `<7>` debug, so `journalctl -p` filters.
//!
//! With `GRACE_LOG_STDOUT=1` records below WARN go to stdout instead, for process
//! managers that keep output and errors apart (PM2's `out_file` and `error_file`);
//! warnings and errors always go to stderr.
//!
//! Stderr may go away under a running process (a closed pipe, a hung-up terminal):
//! every write to it goes through [`write_stderr`], which drops and counts a failed
//! write ([`dropped_stderr_writes`]) instead of panicking as `eprintln!` does; stdout is
//! written the same way.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::record::{Record, TextStyle};

/// The variable that overrides `[logging] stderr` (`auto`, `text`, `json`, `off`). A
/// watchdog running in the background sets it to `off` for serve, whose stderr it
/// captures to a file: the records are in `logs/grace.jsonl` already.
pub const STDERR_ENV: &str = "GRACE_LOG_STDERR";

/// What goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StderrFormat {
    /// Readable text (see the module docs).
    #[default]
    Auto,
    /// Readable text, always with the time, never coloured.
    Text,
    /// The JSON records of the log file.
    Json,
    /// Nothing.
    Off,
}

impl std::str::FromStr for StderrFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<StderrFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(StderrFormat::Auto),
            "text" => Ok(StderrFormat::Text),
            "json" => Ok(StderrFormat::Json),
            "off" => Ok(StderrFormat::Off),
            other => Err(format!(
                "{STDERR_ENV}={other:?} is not a stderr format: use auto, text, json or off"
            )),
        }
    }
}

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many writes to stderr failed and were dropped in this process.
pub fn dropped_stderr_writes() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The variable that sends records below WARN to stdout.
pub const LOG_STDOUT_ENV: &str = "GRACE_LOG_STDOUT";

/// Whether records below WARN go to stdout (`GRACE_LOG_STDOUT=1`, read once; serve
/// inherits it from the watchdog). Warnings and errors always go to stderr.
pub fn info_to_stdout() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(LOG_STDOUT_ENV).is_some_and(|v| v == "1"))
}

/// Writes `bytes` to stderr whole. A failure (EPIPE from a closed pipe, EIO from a
/// hung-up terminal) is counted and returned, never a panic: losing a line of output
/// must never stop the process.
pub fn write_stderr(bytes: &[u8]) -> std::io::Result<()> {
    write_counted(&mut std::io::stderr().lock(), bytes)
}

/// Writes a log line: to stderr, or to stdout when it is below WARN (`serious` false)
/// and [`info_to_stdout`] holds. Failures are counted as [`write_stderr`]'s are.
pub fn write_log_line(serious: bool, bytes: &[u8]) -> std::io::Result<()> {
    if !serious && info_to_stdout() {
        write_counted(&mut std::io::stdout().lock(), bytes)
    } else {
        write_stderr(bytes)
    }
}

fn write_counted(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    let r = out.write_all(bytes).and_then(|()| out.flush());
    if r.is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Whether stderr is connected to the journal: `JOURNAL_STREAM` (`DEV:INODE`) names the
/// file stderr is open on. A child that inherited the variable but not the stream (its
/// stderr redirected) is not.
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v
        .to_str()
        .and_then(|s| s.split_once(':'))
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
    else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Text(TextStyle),
    Json,
    Off,
}

/// How this process writes records to stderr, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StderrOut {
    shape: Shape,
    journal: bool,
}

impl StderrOut {
    /// The output `configured` asks for, unless [`STDERR_ENV`] says otherwise (an
    /// unreadable value is ignored: logging must start).
    pub fn resolve(configured: StderrFormat) -> StderrOut {
        let format = std::env::var(STDERR_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(configured);
        let journal = stderr_is_journal();
        let shape = match format {
            StderrFormat::Off => Shape::Off,
            StderrFormat::Json => Shape::Json,
            StderrFormat::Text => Shape::Text(TextStyle {
                timestamp: true,
                ansi: false,
            }),
            StderrFormat::Auto => Shape::Text(TextStyle {
                timestamp: !journal,
                ansi: !journal && super::color::stderr_escapes(),
            }),
        };
        StderrOut { shape, journal }
    }

    /// Nothing to stderr.
    pub fn off() -> StderrOut {
        StderrOut {
            shape: Shape::Off,
            journal: false,
        }
    }

    /// Whether nothing is written.
    pub fn is_off(&self) -> bool {
        self.shape == Shape::Off
    }

    /// The bytes `r` becomes on stderr (None when off): one line, or with the journal
    /// one priority-prefixed line per line of the text.
    pub fn bytes(&self, r: &Record) -> Option<Vec<u8>> {
        let text = match self.shape {
            Shape::Off => return None,
            Shape::Json => {
                let mut line = r.json_line();
                line.pop();
                String::from_utf8_lossy(&line).into_owned()
            }
            Shape::Text(style) => r.text(style),
        };
        let mut out = String::with_capacity(text.len() + 8);
        for line in text.lines() {
            if self.journal {
                out.push_str(&format!("<{}>", r.level.syslog_priority()));
            }
            out.push_str(line);
            out.push('\n');
        }
        Some(out.into_bytes())
    }

    /// Writes `r` to stderr (to stdout when below WARN and [`info_to_stdout`]); a
    /// failed write is counted and returned.
    pub fn write(&self, r: &Record) -> std::io::Result<()> {
        match self.bytes(r) {
            Some(b) => write_log_line(r.level <= super::Level::Warn, &b),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Level;

    #[test]
    fn journal_lines_carry_the_priority_on_every_line() {
        let out = StderrOut {
            shape: Shape::Text(TextStyle::default()),
            journal: true,
        };
        let r = Record::now(
            Level::Error,
            "grace::serve",
            "two\nlines",
            Default::default(),
        );
        let b = String::from_utf8(out.bytes(&r).expect("on")).expect("utf8");
        assert_eq!(b, "<3>ERROR two\n<3>lines\n");
        assert!(StderrOut::off().bytes(&r).is_none());
        assert_eq!("JSON".parse(), Ok(StderrFormat::Json));
        assert!("loud".parse::<StderrFormat>().is_err());
    }
}
