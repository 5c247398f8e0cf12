//! The kernel restarts the dashboard's chart shows, kept in `<state>/restarts.jsonl` so
//! that the history outlives serve: checksummed append-only records, one a line
//! (`<crc32 of the JSON, 8 hex digits> <JSON>`), read back at start with any torn or
//! damaged line skipped. The file stays bounded: once it holds twice [`CAPACITY`]
//! records it is rewritten atomically with the newest [`CAPACITY`].

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bus::{Bus, Event, Topic};

/// The bus subscriber name of the recorder.
pub const SUBSCRIBER: &str = "restart_history";
/// Restarts kept (in memory, and at least as many on disk).
pub const CAPACITY: usize = 500;
/// Longest restart reason kept.
const REASON_LEN: usize = 200;

/// One restart, for the timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestartPoint {
    /// When (RFC 3339).
    pub at: String,
    /// The kernel.
    pub kernel: String,
    /// The reason.
    pub reason: String,
    /// `success`, `failed` or `max_attempts`.
    pub outcome: String,
}

impl RestartPoint {
    /// The restart a `kernel.restart.*` outcome event reports, if it is one.
    pub fn of(e: &Event) -> Option<RestartPoint> {
        let outcome = match e.topic {
            Topic::KernelRestartSuccess => "success",
            Topic::KernelRestartFailed => "failed",
            Topic::KernelRestartMaxAttempts => "max_attempts",
            _ => return None,
        };
        let text = |k: &str| e.payload.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(RestartPoint {
            at: e.at.clone(),
            kernel: e
                .component
                .clone()
                .or_else(|| text("kernel"))
                .unwrap_or_else(|| "unknown".to_owned()),
            reason: text("reason")
                .unwrap_or_else(|| "unknown".to_owned())
                .chars()
                .take(REASON_LEN)
                .collect(),
            outcome: outcome.to_owned(),
        })
    }
}

/// One line of the file.
fn encode(p: &RestartPoint) -> Vec<u8> {
    let json = serde_json::to_vec(p).unwrap_or_default();
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// The record a line holds, if its checksum matches.
fn decode(line: &str) -> Option<RestartPoint> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    (crc32fast::hash(json.as_bytes()) == crc).then(|| serde_json::from_str(json).ok())?
}

struct Inner {
    points: VecDeque<RestartPoint>,
    /// Records in the file (good or not), to know when to compact it.
    lines: usize,
    file: Option<File>,
}

/// The restart history of one state directory.
pub struct RestartHistory {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RestartHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartHistory")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RestartHistory {
    /// Reads the history kept at `path` (none yet: empty). Damaged lines are skipped
    /// and counted in a warning; the file is never refused.
    pub fn open(path: &Path) -> RestartHistory {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "restart history unreadable; starting an empty one");
                String::new()
            }
        };
        let mut points = VecDeque::with_capacity(CAPACITY);
        let (mut lines, mut bad) = (0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            match decode(line) {
                Some(p) => {
                    if points.len() == CAPACITY {
                        points.pop_front();
                    }
                    points.push_back(p);
                }
                None => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(path = %path.display(), skipped = bad, "restart history: damaged records skipped");
        }
        RestartHistory {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                points,
                lines,
                file: None,
            }),
        }
    }

    /// The restarts kept, oldest first.
    pub fn points(&self) -> Vec<RestartPoint> {
        self.inner.lock().points.iter().cloned().collect()
    }

    /// Appends `batch` in memory and to the file (one write, then `fdatasync`);
    /// compacts the file when it holds twice [`CAPACITY`] records. Blocking.
    pub fn record(&self, batch: &[RestartPoint]) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        for p in batch {
            if inner.points.len() == CAPACITY {
                inner.points.pop_front();
            }
            inner.points.push_back(p.clone());
        }
        if inner.lines + batch.len() >= 2 * CAPACITY {
            let all: Vec<u8> = inner.points.iter().flat_map(encode).collect();
            inner.file = None;
            crate::state::atomic_write(&self.path, &all)?;
            inner.lines = inner.points.len();
            return Ok(());
        }
        if inner.file.is_none() {
            inner.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let bytes: Vec<u8> = batch.iter().flat_map(encode).collect();
        let file = inner.file.as_mut().ok_or(std::io::ErrorKind::NotFound)?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        inner.lines += batch.len();
        Ok(())
    }
}

/// Subscribes to the restart outcomes on the bus and records each (the ones waiting
/// together in one write) until the task is aborted.
pub fn spawn(bus: &Bus, history: Arc<RestartHistory>) -> tokio::task::JoinHandle<()> {
    let sub = bus.subscribe(SUBSCRIBER, &["kernel.restart.*"]);
    tokio::spawn(async move {
        while let Some(first) = sub.recv().await {
            let batch: Vec<RestartPoint> = std::iter::once(first)
                .chain(std::iter::from_fn(|| sub.try_recv()))
                .filter_map(|e| RestartPoint::of(&e))
                .collect();
            if batch.is_empty() {
                continue;
            }
            let h = history.clone();
            match tokio::task::spawn_blocking(move || h.record(&batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(path = %history.path.display(), error = %e, "restart history: record not written")
                }
                Err(e) => tracing::warn!(error = %e, "restart history: writer failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: usize) -> RestartPoint {
        RestartPoint {
            at: format!("2026-01-01T00:00:{:02}.000000Z", i % 60),
            kernel: format!("k{i}"),
            reason: "panic: boom".to_owned(),
            outcome: "success".to_owned(),
        }
    }

    #[test]
    fn survives_a_reopen_and_skips_torn_or_damaged_lines() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = crate::state::StatePaths::new(d.path()).restart_history();
        let h = RestartHistory::open(&path);
        assert!(h.points().is_empty());
        h.record(&[point(1), point(2)]).expect("record");
        h.record(&[point(3)]).expect("record");
        drop(h);
        let mut text = std::fs::read_to_string(&path).expect("read");
        // A record damaged in place, and a torn last line (a crash mid-write).
        text = text.replacen("k2", "k9", 1);
        text.push_str("0badc0de {\"at\":\"2026");
        std::fs::write(&path, text).expect("write");
        let again = RestartHistory::open(&path);
        let kernels: Vec<String> = again.points().into_iter().map(|p| p.kernel).collect();
        assert_eq!(kernels, ["k1", "k3"]);
    }

    #[test]
    fn stays_bounded_in_memory_and_on_disk() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = crate::state::StatePaths::new(d.path()).restart_history();
        let h = RestartHistory::open(&path);
        let all: Vec<RestartPoint> = (0..3 * CAPACITY).map(point).collect();
        for batch in all.chunks(7) {
            h.record(batch).expect("record");
        }
        assert_eq!(h.points().len(), CAPACITY);
        assert_eq!(
            h.points()[CAPACITY - 1].kernel,
            format!("k{}", 3 * CAPACITY - 1)
        );
        let lines = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count();
        assert!(lines < 2 * CAPACITY, "{lines} lines on disk");
        let again = RestartHistory::open(&path);
        assert_eq!(again.points(), h.points());
    }

    #[test]
    fn only_restart_outcomes_are_points() {
        let e = Event::new(
            Topic::KernelRestartFailed,
            Some("kv_store"),
            serde_json::json!({"reason": "x".repeat(500)}),
        );
        let p = RestartPoint::of(&e).expect("a point");
        assert_eq!(
            (p.kernel.as_str(), p.outcome.as_str()),
            ("kv_store", "failed")
        );
        assert_eq!(p.reason.len(), REASON_LEN);
        assert!(RestartPoint::of(&Event::new(Topic::KernelError, None, ())).is_none());
    }
}
