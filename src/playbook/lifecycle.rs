//! The incident and trust bookkeeping the dispatcher does around a run: open (or count
//! a repeat), mark mitigating, close with MTTR, and adjust the component's trust.

use std::collections::HashMap;
use std::io::Write;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::bus::Topic;
use crate::incident::{Incident, IncidentDraft, IncidentStatus, StepRecord};
use crate::tree::System;

/// What opening a draft gave.
pub(crate) enum Opened {
    /// A new incident.
    New(Incident),
    /// The same (trigger, component) is already open: counted only.
    Repeat(Incident),
}

/// Open incidents by (trigger, component), and trust scores by component.
#[derive(Default)]
pub(crate) struct Lifecycle {
    open: Mutex<HashMap<(String, String), Incident>>,
    trust: Mutex<HashMap<String, f64>>,
}

fn new_id() -> String {
    let now = crate::time::now();
    format!(
        "inc_{}_{:06}",
        crate::time::compact(now),
        now.timestamp_subsec_micros()
    )
}

impl Lifecycle {
    fn append(system: &System, inc: &Incident) {
        let path = system.paths.incidents();
        let line = match serde_json::to_string(inc) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise incident");
                return;
            }
        };
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(format!("{line}\n").as_bytes())?;
                f.sync_data()
            });
        if let Err(e) = r {
            tracing::error!(path = %path.display(), error = %e, "cannot append incident");
        }
        if let Err(e) = system.audit.append("incident", json!(inc)) {
            tracing::error!(error = %e, "cannot append incident to the audit log");
        }
    }

    /// Opens an incident for `draft`, or counts a repeat of the open one.
    pub(crate) fn open(&self, system: &System, draft: &IncidentDraft) -> Opened {
        let key = (draft.trigger.clone(), draft.component.clone());
        let mut open = self.open.lock();
        if let Some(inc) = open.get_mut(&key) {
            inc.occurrences += 1;
            return Opened::Repeat(inc.clone());
        }
        let inc = Incident {
            incident_id: new_id(),
            detected_at: draft
                .detected_at
                .clone()
                .unwrap_or_else(|| crate::time::rfc3339(crate::time::now())),
            resolved_at: None,
            status: IncidentStatus::Open,
            failure_mode: draft.failure_mode.clone(),
            severity: draft.severity,
            component: draft.component.clone(),
            trigger: draft.trigger.clone(),
            playbook: draft.playbook.clone(),
            steps: Vec::new(),
            mttr_seconds: None,
            success: None,
            occurrences: 1,
            summary: draft.summary.clone(),
            details: draft.details.clone(),
        };
        Self::append(system, &inc);
        open.insert(key, inc.clone());
        Opened::New(inc)
    }

    /// Marks an incident as being mitigated by `playbook`.
    pub(crate) fn mitigating(&self, system: &System, inc: &Incident, playbook: &str) {
        let key = (inc.trigger.clone(), inc.component.clone());
        let mut open = self.open.lock();
        if let Some(i) = open.get_mut(&key) {
            i.status = IncidentStatus::Mitigating;
            i.playbook = Some(playbook.to_owned());
            Self::append(system, i);
        }
    }

    /// Closes an incident with `status`, its steps and extra details; returns the
    /// closed record (with `resolved_at` and `mttr_seconds`).
    pub(crate) fn close(
        &self,
        system: &System,
        inc: &Incident,
        status: IncidentStatus,
        steps: Vec<StepRecord>,
        details: Value,
    ) -> Incident {
        let key = (inc.trigger.clone(), inc.component.clone());
        let mut closed = self.open.lock().remove(&key).unwrap_or_else(|| inc.clone());
        let now = crate::time::now();
        closed.status = status;
        closed.resolved_at = Some(crate::time::rfc3339(now));
        closed.mttr_seconds = chrono::DateTime::parse_from_rfc3339(&closed.detected_at)
            .ok()
            .and_then(|d| now.signed_duration_since(d).num_microseconds())
            .map(|us| us.max(0) as f64 / 1e6);
        closed.success = Some(status == IncidentStatus::Resolved);
        closed.steps = steps;
        if let (Value::Object(d), Value::Object(extra)) = (&mut closed.details, &details) {
            d.extend(extra.clone());
        } else if closed.details.is_null() {
            closed.details = details;
        } else {
            closed.details = json!({ "trigger": closed.details, "remediation": details });
        }
        Self::append(system, &closed);
        closed
    }

    /// Moves a component's trust by `delta` (clamped to [0, 1]) and publishes it.
    pub(crate) fn adjust_trust(&self, system: &System, component: &str, delta: f64, reason: &str) {
        let (old, new) = {
            let mut t = self.trust.lock();
            let s = t.entry(component.to_owned()).or_insert(1.0);
            let old = *s;
            *s = (old + delta).clamp(0.0, 1.0);
            (old, *s)
        };
        system.bus.emit(
            Topic::TrustScoreUpdate,
            Some(component),
            json!({ "component": component, "old": old, "score": new, "reason": reason }),
        );
    }
}
