//! Retention of `incidents.jsonl`: closed incidents older than `[incidents]
//! retain_closed` move to dated segments, `incidents/<YYYY-MM>.jsonl` (the month they
//! closed), as one line each in their final state; open incidents, and closed ones
//! still within the retention, stay in `incidents.jsonl`.
//!
//! Crash-safe and never losing an incident: each segment is rewritten whole (temporary
//! file, fsync, rename) before `incidents.jsonl` is, and a segment never takes an
//! incident twice. A crash between the two leaves an incident in both files, which
//! every reader folds into one ([`crate::incident::read_incidents`] reads
//! `incidents.jsonl` first, then the segments, so a move in progress never hides one).

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{IncidentError, IncidentStore};
use crate::incident::journal::fold;
use crate::incident::model::Incident;

/// How often the store checks for incidents to move (at load, then at most this often).
pub(super) const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The directory of the segments of the incidents file at `path` (`incidents/`).
pub fn segments_dir(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "incidents".to_owned());
    path.with_file_name(stem)
}

/// The segments of the incidents file at `path`, oldest first.
pub fn segment_files(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(segments_dir(path))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// When an incident closed (its `resolved_at`, else when it was detected).
fn closed_at(i: &Incident) -> Option<DateTime<Utc>> {
    let t = i.resolved_at.as_deref().unwrap_or(&i.detected_at);
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Deserialize)]
struct IdOnly {
    incident_id: String,
}

impl IncidentStore {
    /// Moves the closed incidents that closed before `now - retain_closed` to their
    /// segments; returns how many moved. Runs with the store locked: no change is
    /// recorded meanwhile.
    pub fn segment_closed(&self, now: DateTime<Utc>) -> Result<usize, IncidentError> {
        let Ok(retain) = chrono::Duration::from_std(self.retain_closed) else {
            return Ok(0);
        };
        let cutoff = now - retain;
        let mut g = self.inner.lock();
        let mut bytes = vec![0u8; g.end as usize];
        g.file.read_exact_at(&mut bytes, 0).map_err(self.io())?;
        let journal = fold(&bytes);
        let mut by_month: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
        for i in journal.incidents.iter().filter(|i| !i.status.is_open()) {
            if let Some(t) = closed_at(i).filter(|t| *t < cutoff) {
                by_month
                    .entry(t.format("%Y-%m").to_string())
                    .or_default()
                    .push(i);
            }
        }
        if by_month.is_empty() {
            return Ok(0);
        }
        let dir = segments_dir(&self.path);
        let mut moved: HashSet<&str> = HashSet::new();
        let mut written = Vec::new();
        for (month, incidents) in &by_month {
            let seg = dir.join(format!("{month}.jsonl"));
            let old = match std::fs::read(&seg) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => return Err(IncidentError::Io { path: seg, source }),
            };
            let have = fold(&old);
            let known: HashSet<&str> = have
                .incidents
                .iter()
                .map(|i| i.incident_id.as_str())
                .collect();
            let mut out = old[..have.complete_len as usize].to_vec();
            for i in incidents {
                if !known.contains(i.incident_id.as_str()) {
                    out.extend(serde_json::to_vec(i).map_err(|e| (self.io())(e.into()))?);
                    out.push(b'\n');
                }
                moved.insert(&i.incident_id);
            }
            crate::state::atomic_write(&seg, &out).map_err(|source| IncidentError::Io {
                path: seg.clone(),
                source,
            })?;
            written.push(seg);
        }
        let mut keep = Vec::with_capacity(bytes.len());
        for line in bytes[..journal.complete_len as usize].split_inclusive(|b| *b == b'\n') {
            let id = serde_json::from_slice::<IdOnly>(line).ok();
            if !id.is_some_and(|x| moved.contains(x.incident_id.as_str())) {
                keep.extend_from_slice(line);
            }
        }
        crate::state::atomic_write(&self.path, &keep).map_err(self.io())?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(self.io())?;
        self.syncer
            .replace_file(file.try_clone().map_err(self.io())?);
        g.file = file;
        g.end = keep.len() as u64;
        drop(g);
        let n = moved.len();
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        tracing::info!(moved = n, segments = ?names, "closed incidents past retention moved to segments");
        self.audit.append(
            "incidents.segmented",
            json!({ "moved": n, "segments": names }),
        )?;
        Ok(n)
    }

    /// Moves closed incidents past retention when the last check is [`CHECK_EVERY`]
    /// old; a failure is logged and tried again at the next check.
    pub fn maintain(&self) {
        {
            let mut last = self.last_segmented.lock();
            if last.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Err(e) = self.segment_closed(crate::time::now()) {
            tracing::warn!(error = %e, "cannot move closed incidents to their segments");
        }
    }
}
