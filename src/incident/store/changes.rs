//! Changes to incidents: opening one (or counting a repeat on the open incident of the
//! same trigger and component), changing an open incident's status, and marking it as
//! being remediated. Closing is in `close`.

use chrono::{DateTime, Utc};

use super::{IncidentError, IncidentStore, Inner};
use crate::incident::model::{Incident, IncidentDraft, IncidentStatus, Opened};

pub(super) fn now_rfc3339(t: DateTime<Utc>) -> String {
    crate::time::rfc3339(t)
}

pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl IncidentStore {
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
            closed_reason: None,
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
    /// closes it as [`IncidentStore::resolve`] does, with success only for `resolved`
    /// and the reason that status implies.
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

    pub(super) fn missing(&self, g: &Inner, id: &str) -> IncidentError {
        match g.closed_status(id) {
            Some(status) => IncidentError::AlreadyClosed {
                id: id.to_owned(),
                status,
            },
            None => IncidentError::NotFound(id.to_owned()),
        }
    }
}
