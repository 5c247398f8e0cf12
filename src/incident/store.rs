//! The incident store: `incidents.jsonl` and the open incidents in memory.
//!
//! Every state change is appended as one full JSON line (written straight to the OS, no
//! user-space buffer) and as an audit record. At open the file is folded again, so a
//! restart keeps deduplication of open incidents and the summary.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::config::IncidentsConfig;
use super::ids::IdClock;
use super::journal::fold;
use super::model::{Incident, IncidentDraft, IncidentStatus, Opened, StepRecord};
use super::summary::StatusCounts;
use crate::audit::{AuditError, AuditLog, FsyncPolicy, Syncer};

/// Why an incident operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IncidentError {
    /// I/O on the incidents file.
    #[error("incidents file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No open incident has this id.
    #[error("no incident {0}; `grace incidents` lists them")]
    NotFound(String),
    /// The incident is already closed.
    #[error("incident {id} is already {status}; a closed incident cannot change")]
    AlreadyClosed {
        /// The incident.
        id: String,
        /// Its final status.
        status: IncidentStatus,
    },
    /// `resolve` was given a status that does not close an incident.
    #[error("status {0} does not close an incident; use resolved, escalated or failed")]
    NotTerminal(IncidentStatus),
    /// The audit record of a change could not be written (the change itself was).
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The incidents of one state directory. Safe to share between threads and tasks.
pub struct IncidentStore {
    pub(super) path: PathBuf,
    audit: Arc<AuditLog>,
    policy: FsyncPolicy,
    syncer: Arc<Syncer>,
    pub(super) inner: Mutex<Inner>,
}

pub(super) struct Inner {
    file: File,
    end: u64,
    ids: IdClock,
    pub(super) open: HashMap<String, Incident>,
    dedup: HashMap<(String, String), String>,
    pub(super) recent: VecDeque<Incident>,
    keep_recent: usize,
    pub(super) counts: StatusCounts,
    pub(super) mttrs: Vec<f64>,
}

struct Recorded {
    ticket: u64,
    audit_ticket: Option<u64>,
    audit: Option<AuditError>,
}

fn now_rfc3339(t: DateTime<Utc>) -> String {
    crate::time::rfc3339(t)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Inner {
    fn remember_closed(&mut self, i: Incident) {
        self.recent.push_back(i);
        while self.recent.len() > self.keep_recent {
            self.recent.pop_front();
        }
    }

    fn closed_status(&self, id: &str) -> Option<IncidentStatus> {
        self.recent
            .iter()
            .rev()
            .find(|i| i.incident_id == id)
            .map(|i| i.status)
    }
}

impl IncidentStore {
    /// Loads (creating) the store at `path`, recording every change to `audit` too.
    /// Reloads open incidents (so deduplication survives a restart) and cuts a torn last
    /// line left by a crash.
    pub fn load(
        path: &Path,
        audit: Arc<AuditLog>,
        config: &IncidentsConfig,
    ) -> Result<IncidentStore, IncidentError> {
        let io = |source| IncidentError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io)?;
        let journal = fold(&bytes);
        if journal.torn_bytes > 0 {
            let torn = &bytes[journal.complete_len as usize..];
            tracing::warn!(
                file = %path.display(),
                offset = journal.complete_len,
                bytes = journal.torn_bytes,
                line = %String::from_utf8_lossy(&torn[..torn.len().min(200)]),
                "incidents file: torn last line cut (a write cut short by a crash)"
            );
            file.set_len(journal.complete_len).map_err(io)?;
            file.sync_all().map_err(io)?;
            audit.append(
                "incidents.torn_line_cut",
                json!({ "offset": journal.complete_len, "bytes": journal.torn_bytes }),
            )?;
        }
        if !journal.bad_lines.is_empty() {
            tracing::warn!(
                file = %path.display(),
                lines = ?journal.bad_lines,
                "incidents file: lines that are not incidents were skipped"
            );
        }
        let mut inner = Inner {
            file: file.try_clone().map_err(io)?,
            end: journal.complete_len,
            ids: IdClock::default(),
            open: HashMap::new(),
            dedup: HashMap::new(),
            recent: VecDeque::new(),
            keep_recent: config.keep_recent.max(1),
            counts: StatusCounts::default(),
            mttrs: Vec::new(),
        };
        for i in journal.incidents {
            inner.ids.observe(&i.incident_id);
            inner.counts.add(i.status);
            if let Some(m) = i.mttr_seconds {
                inner.mttrs.push(m);
            }
            if i.status.is_open() {
                inner.dedup.insert(
                    (i.trigger.clone(), i.component.clone()),
                    i.incident_id.clone(),
                );
                inner.open.insert(i.incident_id.clone(), i);
            } else {
                inner.remember_closed(i);
            }
        }
        Ok(IncidentStore {
            path: path.to_path_buf(),
            audit,
            policy: config.fsync,
            syncer: Syncer::new(file, config.fsync, config.group_interval),
            inner: Mutex::new(inner),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> IncidentError + '_ {
        |source| IncidentError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `inc` as a line and as an audit record of `kind`. Call with the lock held.
    /// Fails only when the line was not written; returns the line's durability ticket and
    /// the audit error, if the audit record failed (the change itself stands).
    fn record(&self, g: &mut Inner, kind: &str, inc: &Incident) -> Result<Recorded, IncidentError> {
        let mut line = serde_json::to_vec(inc).map_err(|e| (self.io())(e.into()))?;
        line.push(b'\n');
        if let Err(e) = g.file.write_all_at(&line, g.end) {
            // Leave no partial line for the next one to be glued to.
            let _ = g.file.set_len(g.end);
            return Err((self.io())(e));
        }
        g.end += line.len() as u64;
        let ticket = self.syncer.note_write();
        let data = serde_json::to_value(inc).unwrap_or_default();
        // The audit record is written now, in order with the line, and made durable
        // after the lock is released, so concurrent changes share fsyncs.
        let (audit_ticket, audit) = match self.audit.append_deferred(kind, &data) {
            Ok((_, t)) => (Some(t), None),
            Err(e) => {
                tracing::error!(error = %e, incident = %inc.incident_id, kind, "incident change not audited");
                (None, Some(e))
            }
        };
        Ok(Recorded {
            ticket,
            audit_ticket,
            audit,
        })
    }

    /// After the lock is released: waits for durability as the policy says, and reports
    /// an audit failure.
    fn settle(&self, r: Recorded) -> Result<(), IncidentError> {
        if self.policy == FsyncPolicy::Always {
            self.syncer.sync_to(r.ticket).map_err(self.io())?;
        }
        if let Some(t) = r.audit_ticket {
            if self.audit.policy() == FsyncPolicy::Always {
                self.audit.wait_durable(t)?;
            }
        }
        match r.audit {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Opens an incident for `draft`, or, when one for the same (trigger, component) is
    /// already open, counts a repeat on it (appended as a state line too).
    pub fn open(&self, draft: IncidentDraft) -> Result<Opened, IncidentError> {
        let mut g = self.inner.lock();
        let key = (draft.trigger.clone(), draft.component.clone());
        if let Some(id) = g.dedup.get(&key).cloned() {
            let Some(mut inc) = g.open.get(&id).cloned() else {
                g.dedup.remove(&key);
                drop(g);
                return self.open(draft);
            };
            inc.occurrences += 1;
            let occurrences = inc.occurrences;
            let r = self.record(&mut g, "incident.repeat", &inc)?;
            g.open.insert(id.clone(), inc);
            drop(g);
            self.settle(r)?;
            return Ok(Opened::Repeat {
                incident_id: id,
                occurrences,
            });
        }
        let now = crate::time::now();
        let detected = draft
            .detected_at
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(now);
        let inc = Incident {
            incident_id: g.ids.next(now),
            detected_at: now_rfc3339(detected),
            resolved_at: None,
            status: IncidentStatus::Open,
            failure_mode: draft.failure_mode,
            severity: draft.severity,
            component: draft.component,
            trigger: draft.trigger,
            playbook: draft.playbook,
            steps: Vec::new(),
            mttr_seconds: None,
            success: None,
            occurrences: 1,
            summary: draft.summary,
            details: draft.details,
        };
        let r = self.record(&mut g, "incident.opened", &inc)?;
        g.counts.add(IncidentStatus::Open);
        g.dedup.insert(key, inc.incident_id.clone());
        g.open.insert(inc.incident_id.clone(), inc.clone());
        drop(g);
        self.settle(r)?;
        Ok(Opened::New(inc))
    }

    /// Changes an open incident's status. A closing status (resolved, escalated, failed)
    /// closes it as [`IncidentStore::resolve`] does, with success only for `resolved`.
    pub fn set_status(&self, id: &str, status: IncidentStatus) -> Result<Incident, IncidentError> {
        if !status.is_open() {
            return self.resolve(id, status, status == IncidentStatus::Resolved, Vec::new());
        }
        self.update(id, "incident.status", |inc| inc.status = status)
    }

    /// Marks an open incident as being remediated by `playbook`.
    pub fn mitigate(&self, id: &str, playbook: &str) -> Result<Incident, IncidentError> {
        self.update(id, "incident.mitigating", |inc| {
            inc.status = IncidentStatus::Mitigating;
            inc.playbook = Some(playbook.to_owned());
        })
    }

    fn update(
        &self,
        id: &str,
        kind: &str,
        change: impl FnOnce(&mut Incident),
    ) -> Result<Incident, IncidentError> {
        let mut g = self.inner.lock();
        let Some(mut inc) = g.open.get(id).cloned() else {
            return Err(self.missing(&g, id));
        };
        let before = inc.status;
        change(&mut inc);
        let r = self.record(&mut g, kind, &inc)?;
        g.counts.moved(before, inc.status);
        g.open.insert(id.to_owned(), inc.clone());
        drop(g);
        self.settle(r)?;
        Ok(inc)
    }

    fn missing(&self, g: &Inner, id: &str) -> IncidentError {
        match g.closed_status(id) {
            Some(status) => IncidentError::AlreadyClosed {
                id: id.to_owned(),
                status,
            },
            None => IncidentError::NotFound(id.to_owned()),
        }
    }

    /// Closes an open incident with `status` (resolved, escalated or failed), whether
    /// remediation succeeded, and the steps run (added to those recorded). Sets
    /// `resolved_at` to now and `mttr_seconds` = resolved_at − detected_at.
    pub fn resolve(
        &self,
        id: &str,
        status: IncidentStatus,
        success: bool,
        steps: Vec<StepRecord>,
    ) -> Result<Incident, IncidentError> {
        self.resolve_with(id, status, success, steps, Value::Null)
    }

    /// [`IncidentStore::resolve`], also recording `remediation` (what the playbook run
    /// found: its SLO, duration, escalation) under `details.remediation`.
    pub fn resolve_with(
        &self,
        id: &str,
        status: IncidentStatus,
        success: bool,
        steps: Vec<StepRecord>,
        remediation: Value,
    ) -> Result<Incident, IncidentError> {
        if status.is_open() {
            return Err(IncidentError::NotTerminal(status));
        }
        let mut g = self.inner.lock();
        let Some(mut inc) = g.open.get(id).cloned() else {
            return Err(self.missing(&g, id));
        };
        let before = inc.status;
        let now = crate::time::now();
        let mttr = parse_time(&inc.detected_at)
            .map(|d| ((now - d).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0));
        inc.status = status;
        inc.resolved_at = Some(now_rfc3339(now));
        inc.mttr_seconds = mttr;
        inc.success = Some(success);
        inc.steps.extend(steps);
        if !remediation.is_null() {
            match &mut inc.details {
                Value::Object(d) => {
                    d.insert("remediation".to_owned(), remediation);
                }
                Value::Null => inc.details = json!({ "remediation": remediation }),
                other => {
                    let trigger = other.take();
                    inc.details = json!({ "trigger": trigger, "remediation": remediation });
                }
            }
        }
        let r = self.record(&mut g, &format!("incident.{status}"), &inc)?;
        g.counts.moved(before, status);
        if let Some(m) = mttr {
            g.mttrs.push(m);
        }
        g.open.remove(id);
        let key = (inc.trigger.clone(), inc.component.clone());
        if g.dedup.get(&key).is_some_and(|v| v == id) {
            g.dedup.remove(&key);
        }
        g.remember_closed(inc.clone());
        drop(g);
        self.settle(r)?;
        Ok(inc)
    }

    /// Makes every change recorded so far durable (incidents file and audit log).
    pub fn sync(&self) -> Result<(), IncidentError> {
        self.syncer.sync_all().map_err(self.io())?;
        self.audit.sync()?;
        Ok(())
    }
}
