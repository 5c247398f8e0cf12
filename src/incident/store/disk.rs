//! The store's file: loading `incidents.jsonl` and its segments (cutting a torn last
//! line and folding the incidents back into the in-memory index, open ones as orphans), appending each change
//! as a line and an audit record (both or neither), and making the changes durable as the
//! fsync policy says.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;

use super::{ImportCursor, IncidentError, IncidentStore, Inner};
use crate::audit::{AuditLog, FsyncPolicy, Syncer};
use crate::incident::config::IncidentsConfig;
use crate::incident::ids::IdClock;
use crate::incident::journal::{fold, merge, read_journal};
use crate::incident::model::Incident;
use crate::incident::summary::StatusCounts;

pub(super) struct Recorded {
    ticket: u64,
    audit_ticket: u64,
}

impl IncidentStore {
    /// Loads (creating) the store at `path`, recording every change to `audit` too.
    /// Cuts a torn last line left by a crash. Incidents an earlier run left open are
    /// reloaded as orphans ([`IncidentStore::orphans`]): open, but a new draft for the
    /// same trigger and component opens a new incident rather than counting on them.
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
        let mut archived = Vec::new();
        for seg in super::segments::segment_files(path) {
            archived = merge(archived, read_journal(&seg)?.incidents);
        }
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
            orphans: HashSet::new(),
            recent: VecDeque::new(),
            keep_recent: config.keep_recent.max(1),
            counts: StatusCounts::default(),
            mttrs: Vec::new(),
        };
        let mut imports = ImportCursor::default();
        for i in merge(archived, journal.incidents) {
            inner.ids.observe(&i.incident_id);
            inner.counts.add(i.status);
            if let Some(m) = i.mttr_seconds {
                inner.mttrs.push(m);
            }
            if let Some(seq) = super::orphans::watchdog_seq(&i) {
                imports.imported = imports.imported.max(Some(seq));
            }
            if i.status.is_open() {
                inner.orphans.insert(i.incident_id.clone());
                inner.open.insert(i.incident_id.clone(), i);
            } else {
                inner.remember_closed(i);
            }
        }
        let store = IncidentStore {
            path: path.to_path_buf(),
            audit,
            policy: config.fsync,
            syncer: Syncer::new(file, config.fsync, config.group_interval),
            inner: Mutex::new(inner),
            durability: Mutex::new(None),
            imports: Mutex::new(imports),
            retain_closed: config.retain_closed,
            last_segmented: Mutex::new(None),
        };
        store.maintain();
        Ok(store)
    }

    pub(super) fn io(&self) -> impl FnOnce(std::io::Error) -> IncidentError + '_ {
        |source| IncidentError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `inc` as a line and as an audit record of `kind`, as one step: if the
    /// audit record cannot be written, the line is cut off again and the error returned,
    /// so the caller leaves memory as it was. Call with the lock held. Returns the
    /// durability tickets of the line and the record.
    pub(super) fn record(
        &self,
        g: &mut Inner,
        kind: &str,
        inc: &Incident,
    ) -> Result<Recorded, IncidentError> {
        let r = self.record_both(g, kind, inc);
        if let Err(e) = &r {
            tracing::error!(error = %e, incident = %inc.incident_id, kind, "incident change not recorded");
            *self.durability.lock() = Some(e.to_string());
        }
        r
    }

    fn record_both(
        &self,
        g: &mut Inner,
        kind: &str,
        inc: &Incident,
    ) -> Result<Recorded, IncidentError> {
        let mut line = serde_json::to_vec(inc).map_err(|e| (self.io())(e.into()))?;
        line.push(b'\n');
        let before = g.end;
        if let Err(e) = g.file.write_all_at(&line, before) {
            // Leave no partial line for the next one to be glued to.
            let _ = g.file.set_len(before);
            return Err((self.io())(e));
        }
        let data = serde_json::to_value(inc).unwrap_or_default();
        // The audit record is written now, in order with the line, and made durable
        // after the lock is released, so concurrent changes share fsyncs.
        let audit_ticket = match self.audit.append_deferred(kind, &data) {
            Ok((_, t)) => t,
            Err(e) => {
                // Without its audit record the line must not stand: a reader (or the
                // next serve) would see a change the audit log never heard of.
                if let Err(cut) = g.file.set_len(before) {
                    tracing::error!(error = %cut, file = %self.path.display(),
                        "cannot cut an unaudited incident line; it stays in the file");
                    g.end = before + line.len() as u64;
                }
                return Err(e.into());
            }
        };
        g.end = before + line.len() as u64;
        let ticket = self.syncer.note_write();
        Ok(Recorded {
            ticket,
            audit_ticket,
        })
    }

    /// After the lock is released: waits for durability as the policy says; records
    /// the outcome for [`IncidentStore::durability_error`].
    pub(super) fn settle(&self, r: Recorded) -> Result<(), IncidentError> {
        let out = self.wait_for(r);
        self.set_durability(&out);
        out
    }

    fn wait_for(&self, r: Recorded) -> Result<(), IncidentError> {
        if self.policy == FsyncPolicy::Always {
            self.syncer.sync_to(r.ticket).map_err(self.io())?;
        }
        if self.audit.policy() == FsyncPolicy::Always {
            self.audit.wait_durable(r.audit_ticket)?;
        }
        Ok(())
    }

    /// Makes every change recorded so far durable (incidents file and audit log).
    pub fn sync(&self) -> Result<(), IncidentError> {
        let r = self
            .syncer
            .sync_all()
            .map_err(self.io())
            .and_then(|()| Ok(self.audit.sync()?));
        if r.is_err() {
            self.set_durability(&r);
        }
        r
    }
}
