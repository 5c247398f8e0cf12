//! Changes to incidents: opening one (or counting a repeat on the open incident of the
//! same trigger and component), changing an open incident's status, marking it as being
//! remediated, and closing it with its MTTR.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{IncidentError, IncidentStore, Inner};
use crate::incident::model::{
    ClosedReason, Incident, IncidentDraft, IncidentStatus, Opened, StepRecord,
};

/// How an incident is closed: [`IncidentStore::close`].
#[derive(Debug, Clone)]
pub struct Closing {
    /// Resolved, escalated or failed.
    pub status: IncidentStatus,
    /// Why.
    pub reason: ClosedReason,
    /// Steps run (added to those recorded).
    pub steps: Vec<StepRecord>,
    /// What the remediation found, recorded under `details.remediation` (Null: nothing).
    pub remediation: Value,
    /// When the service was seen to recover (the start of the verified streak); None:
    /// now. `resolved_at` and the MTTR are counted to it.
    pub recovered_at: Option<DateTime<Utc>>,
}

impl Closing {
    /// A closing with `status` and the reason that status implies by default.
    pub fn new(status: IncidentStatus) -> Closing {
        let reason = match status {
            IncidentStatus::Resolved => ClosedReason::Verified,
            IncidentStatus::Escalated => ClosedReason::Escalated,
            _ => ClosedReason::RemediationFailed,
        };
        Closing {
            status,
            reason,
            steps: Vec::new(),
            remediation: Value::Null,
            recovered_at: None,
        }
    }
}

fn now_rfc3339(t: DateTime<Utc>) -> String {
    crate::time::rfc3339(t)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
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
        let mut c = Closing::new(status);
        if status == IncidentStatus::Resolved && !success {
            c.reason = ClosedReason::RemediationFailed;
        }
        c.steps = steps;
        c.remediation = remediation;
        self.close_as(id, c, success)
    }

    /// Closes an open incident as `c` says; success is recorded for `resolved` only.
    pub fn close(&self, id: &str, c: Closing) -> Result<Incident, IncidentError> {
        let success = c.status == IncidentStatus::Resolved;
        self.close_as(id, c, success)
    }

    fn close_as(&self, id: &str, c: Closing, success: bool) -> Result<Incident, IncidentError> {
        let Closing {
            status,
            reason,
            steps,
            remediation,
            recovered_at,
        } = c;
        if status.is_open() {
            return Err(IncidentError::NotTerminal(status));
        }
        let mut g = self.inner.lock();
        let Some(mut inc) = g.open.get(id).cloned() else {
            return Err(self.missing(&g, id));
        };
        let before = inc.status;
        let now = recovered_at.unwrap_or_else(crate::time::now);
        let mttr = parse_time(&inc.detected_at)
            .map(|d| ((now - d).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0));
        inc.status = status;
        inc.resolved_at = Some(now_rfc3339(now));
        inc.mttr_seconds = mttr;
        inc.success = Some(success);
        inc.closed_reason = Some(reason);
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
}
