//! The watchdog's record of each repair of serve (`watchdog_incidents.jsonl`), which the
//! next serve turns into an incident (`crate::incident::import_watchdog_repairs`).
//!
//! A repair starts when a run of serve ends in a fault (a crash: any exit serve did not
//! ask for; a hang: `/health` failing; a start that never became healthy) and ends when a
//! restarted serve answers `/health` with 200. Failed starts in between belong to the
//! same repair; if the watchdog paused after too many of them, the repair is a crash
//! loop. Only repairs whose end was seen by a health probe are recorded: a command that
//! is not probed gives no evidence that the restart healed anything.
//!
//! The file is append-only, one JSON object per line, each line fsynced, with its own
//! file rather than a list in `state.json`: `grace stop` rewrites `state.json` too, and
//! records that only ever grow need no read-modify-write shared with it. Every record
//! has a sequence number above any earlier one (and above the last one imported, kept in
//! `watchdog_incidents.imported`), so the importer takes each exactly once.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::actor::{Actor, Run};
use super::events::Level;
use super::policy::{ExitKind, RunEnd};
use crate::state::StatePaths;

/// The file of repair records, in the state directory.
pub const REPAIRS_FILE: &str = "watchdog_incidents.jsonl";

/// The file holding the sequence number of the last repair imported as an incident.
pub const IMPORTED_FILE: &str = "watchdog_incidents.imported";

/// What the watchdog repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Serve exited (or was killed by a signal) without being asked to.
    Crash,
    /// Serve stopped answering `/health` (or never answered it), and was killed.
    Hang,
    /// Restarts kept failing until the watchdog paused.
    CrashLoop,
}

/// One repair of serve by the watchdog: a line of [`REPAIRS_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repair {
    /// Increasing, never reused.
    pub seq: u64,
    /// What was repaired.
    pub cause: Cause,
    /// The fault as the watchdog saw it (`killed by SIGKILL`, `hung: health probe failed`).
    pub reason: String,
    /// The reason of the last failed start, when there were some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    /// The exit status of the faulty serve, if it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did (`SIGKILL`).
    #[serde(default)]
    pub signal: Option<String>,
    /// The faulty serve.
    pub pid: u32,
    /// The serve that came up healthy.
    pub new_pid: u32,
    /// When the watchdog saw the fault (RFC 3339, microseconds).
    pub detected_at: String,
    /// When the new serve answered `/health` with 200.
    pub healthy_at: String,
    /// Starts that failed before the healthy one.
    pub failed_starts: u32,
    /// The watchdog that made the repair.
    pub watchdog_pid: u32,
}

/// A repair under way: the fault is known, no restart is healthy yet.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    cause: Cause,
    reason: String,
    last_reason: Option<String>,
    exit_code: Option<i32>,
    signal: Option<String>,
    pid: u32,
    detected_at: DateTime<Utc>,
    failed_starts: u32,
}

/// The path of [`REPAIRS_FILE`] in `paths`.
pub fn repairs_path(paths: &StatePaths) -> PathBuf {
    paths.root().join(REPAIRS_FILE)
}

/// Reads every complete record of the repairs file (none if it does not exist); a torn
/// last line and lines that are not records are skipped. Also returns the file's length.
pub fn read_repairs(path: &Path) -> io::Result<(Vec<Repair>, u64)> {
    match std::fs::read(path) {
        Ok(b) => Ok((parse(&b).0, b.len() as u64)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Vec::new(), 0)),
        Err(e) => Err(e),
    }
}

/// The records of the complete lines of `bytes`, and where the complete lines end.
fn parse(bytes: &[u8]) -> (Vec<Repair>, usize) {
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let repairs = bytes[..complete]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Repair>(l).ok())
        .collect();
    (repairs, complete)
}

/// The sequence number of the last repair imported as an incident, if any.
pub fn read_imported(paths: &StatePaths) -> Option<u64> {
    let text = std::fs::read(paths.root().join(IMPORTED_FILE)).ok()?;
    serde_json::from_slice::<serde_json::Value>(&text)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// Records (atomically) that repairs up to `seq` are incidents.
pub fn write_imported(paths: &StatePaths, seq: u64) -> io::Result<()> {
    let doc = json!({ "seq": seq, "at": crate::time::rfc3339(crate::time::now()) });
    crate::state::atomic_write(
        &paths.root().join(IMPORTED_FILE),
        doc.to_string().as_bytes(),
    )
}

/// Appends `repair` (given the next sequence number) to the repairs file and fsyncs it;
/// a torn last line left by a crash is cut first.
fn append(paths: &StatePaths, mut repair: Repair) -> io::Result<Repair> {
    let path = repairs_path(paths);
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .open(&path)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut f, &mut bytes)?;
    let (known, complete) = parse(&bytes);
    if complete < bytes.len() {
        f.set_len(complete as u64)?;
    }
    let last = known
        .iter()
        .map(|r| r.seq)
        .chain(read_imported(paths))
        .max();
    repair.seq = last.map_or(0, |s| s + 1);
    let mut line = serde_json::to_vec(&repair).map_err(io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_all()?;
    if !existed {
        File::open(paths.root())?.sync_all()?;
    }
    Ok(repair)
}

fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {s}"))
}

impl Actor {
    /// After a run ended (`end`, classified `since_end` ago): a fault starts a repair, or
    /// counts as a failed start of the one under way. Whether the watchdog now pauses
    /// is read from the phase it has entered.
    pub(super) fn note_fault(&mut self, run: &Run, end: &RunEnd) {
        if end.kind == ExitKind::RestartRequested {
            return;
        }
        let since_end = run.started.elapsed().saturating_sub(end.uptime);
        let paused = self.phase_name == "paused";
        let reason = end.kind.reason();
        match &mut self.repair {
            Some(p) => {
                p.failed_starts += 1;
                p.last_reason = Some(reason);
                if paused {
                    p.cause = Cause::CrashLoop;
                }
            }
            None => {
                let (exit_code, signal) = match end.kind {
                    ExitKind::Code(c) => (Some(c), None),
                    ExitKind::Signal(s) => (None, Some(signal_name(s))),
                    _ => (None, None),
                };
                let cause = match end.kind {
                    _ if paused => Cause::CrashLoop,
                    ExitKind::Hung | ExitKind::NeverReady => Cause::Hang,
                    _ => Cause::Crash,
                };
                let ago = chrono::Duration::from_std(since_end).unwrap_or_default();
                self.repair = Some(Pending {
                    cause,
                    reason,
                    last_reason: None,
                    exit_code,
                    signal,
                    pid: run.pid,
                    detected_at: crate::time::now() - ago,
                    failed_starts: 0,
                });
            }
        }
    }

    /// A run answered `/health` with 200: a restart that did ends the repair under way,
    /// which is recorded. A start that is not a restart (after `grace start`) ends it
    /// unrecorded: the operator, not the watchdog, brought serve back.
    pub(super) fn note_healthy(&mut self, run: &Run) {
        let Some(p) = self.repair.take() else {
            return;
        };
        if !run.is_restart {
            return;
        }
        let healthy = crate::time::now();
        let repair = Repair {
            seq: 0,
            cause: p.cause,
            reason: p.reason,
            last_reason: p.last_reason,
            exit_code: p.exit_code,
            signal: p.signal,
            pid: p.pid,
            new_pid: run.pid,
            detected_at: crate::time::rfc3339(p.detected_at),
            healthy_at: crate::time::rfc3339(healthy),
            failed_starts: p.failed_starts,
            watchdog_pid: std::process::id(),
        };
        let secs = (healthy - p.detected_at)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        match append(&self.opts.paths, repair) {
            Ok(r) => self.log.record(
                Level::Info,
                "watchdog.repair_recorded",
                json!({"seq": r.seq, "cause": r.cause, "pid": r.pid, "new_pid": r.new_pid,
                       "repair_s": secs}),
            ),
            Err(e) => self.log.record(
                Level::Error,
                "watchdog.repair_record_failed",
                json!({"error": e.to_string(), "file": repairs_path(&self.opts.paths)}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repair(cause: Cause) -> Repair {
        Repair {
            seq: 0,
            cause,
            reason: "killed by SIGKILL".into(),
            last_reason: None,
            exit_code: None,
            signal: Some("SIGKILL".into()),
            pid: 10,
            new_pid: 11,
            detected_at: "2026-01-01T00:00:00.000000Z".into(),
            healthy_at: "2026-01-01T00:00:01.500000Z".into(),
            failed_starts: 0,
            watchdog_pid: 9,
        }
    }

    #[test]
    fn sequence_numbers_grow_past_the_file_and_the_import_marker_and_torn_lines_are_cut() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        assert_eq!(append(&paths, repair(Cause::Crash)).expect("append").seq, 0);
        assert_eq!(append(&paths, repair(Cause::Hang)).expect("append").seq, 1);
        // A crash mid-write leaves a torn line; the file is rotated away but the
        // importer has seen up to 7.
        let path = repairs_path(&paths);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"seq\":2,\"cau"))
            .expect("tear");
        assert_eq!(
            append(&paths, repair(Cause::CrashLoop))
                .expect("append")
                .seq,
            2
        );
        let (all, _) = read_repairs(&path).expect("read");
        let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(all[2].cause, Cause::CrashLoop);
        std::fs::remove_file(&path).expect("rm");
        write_imported(&paths, 7).expect("marker");
        assert_eq!(read_imported(&paths), Some(7));
        assert_eq!(append(&paths, repair(Cause::Crash)).expect("append").seq, 8);
    }
}
