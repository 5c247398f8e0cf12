//! The incident and trust bookkeeping the dispatcher does around a run, through the
//! shared incident store and trust ledger. A failure to record is logged and never
//! stops remediation: a full disk must not keep `resource_cleanup` from running.

use crate::incident::{Closing, Incident, IncidentDraft, IncidentStatus, Opened, Severity};
use crate::tree::System;
use crate::trust::Change;

/// An incident kept in memory only, when the store could not record it.
fn unrecorded(draft: &IncidentDraft) -> Incident {
    let now = crate::time::now();
    Incident {
        incident_id: crate::incident::format_id(now.timestamp_micros()),
        detected_at: draft
            .detected_at
            .clone()
            .unwrap_or_else(|| crate::time::rfc3339(now)),
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
        closed_reason: None,
    }
}

/// Opens an incident for `draft`, or counts a repeat of the open one. A new incident
/// raises an `incident.opened` alert (the alert that fires in Alertmanager until the
/// incident's `incident.closed`).
pub(crate) fn open(system: &System, draft: &IncidentDraft) -> Opened {
    let opened = match system.incidents.open(draft.clone()) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, trigger = %draft.trigger, component = %draft.component,
                "cannot record the incident; remediating it anyway");
            Opened::New(unrecorded(draft))
        }
    };
    if let Opened::New(inc) = &opened {
        alert_opened(system, inc);
    }
    opened
}

/// The alert of a new incident: a warning for a high or critical one (Grace is on it; a
/// human hears when it fails or is escalated), else info.
fn alert_opened(system: &System, inc: &Incident) {
    let severity = match inc.severity {
        Severity::High | Severity::Critical => crate::alerts::Severity::Warning,
        Severity::Low | Severity::Medium => crate::alerts::Severity::Info,
    };
    let summary = format!(
        "incident {} opened ({} on {}): {}",
        inc.incident_id, inc.trigger, inc.component, inc.summary
    );
    let payload = serde_json::json!({
        "incident_id": inc.incident_id, "component": inc.component, "trigger": inc.trigger,
        "failure_mode": inc.failure_mode, "severity_of_incident": inc.severity,
        "detected_at": inc.detected_at,
    });
    alert(system, severity, "incident.opened", &summary, payload);
}

/// Raises an alert of the dispatcher; a failure is logged, never stops it.
pub(crate) fn alert(
    system: &System,
    severity: crate::alerts::Severity,
    event: &str,
    summary: &str,
    payload: serde_json::Value,
) {
    let (paths, cfg) = (&system.paths, &system.config.alerts);
    if let Err(e) = crate::alerts::raise(paths, cfg, severity, event, summary, payload) {
        tracing::warn!(error = %e, event, "cannot raise the alert");
    }
}

/// Marks an incident as being mitigated by `playbook`.
pub(crate) fn mitigating(system: &System, inc: &Incident, playbook: &str) {
    if let Err(e) = system.incidents.mitigate(&inc.incident_id, playbook) {
        tracing::error!(error = %e, incident = %inc.incident_id, "cannot mark the incident mitigating");
    }
}

/// Marks an incident as verifying: its playbook has ended, the verdict is pending.
pub(crate) fn verifying(system: &System, inc: &Incident) {
    if let Err(e) = system
        .incidents
        .set_status(&inc.incident_id, IncidentStatus::Verifying)
    {
        tracing::error!(error = %e, incident = %inc.incident_id, "cannot mark the incident verifying");
    }
}

/// Closes an incident as `c` says; returns the closed record (with `resolved_at` and
/// `mttr_seconds`). When the store cannot record it, the record is built in memory so
/// the caller still reports what happened.
pub(crate) fn close(system: &System, inc: &Incident, c: Closing) -> Incident {
    match system.incidents.close(&inc.incident_id, c.clone()) {
        Ok(closed) => closed,
        Err(e) => {
            tracing::error!(error = %e, incident = %inc.incident_id, status = %c.status, "cannot record the incident's end");
            let at = c.recovered_at.unwrap_or_else(crate::time::now);
            let mut closed = inc.clone();
            closed.status = c.status;
            closed.closed_reason = Some(c.reason);
            closed.resolved_at = Some(crate::time::rfc3339(at));
            closed.success = Some(c.status == IncidentStatus::Resolved);
            closed.steps.extend(c.steps);
            closed.mttr_seconds = chrono::DateTime::parse_from_rfc3339(&inc.detected_at)
                .ok()
                .and_then(|d| at.signed_duration_since(d).num_microseconds())
                .map(|us| us.max(0) as f64 / 1e6);
            closed
        }
    }
}

/// Moves a component's trust (published as `trust.score.update` by the ledger).
pub(crate) fn trust(system: &System, component: &str, change: Change, reason: &str) {
    if let Err(e) = system.trust.adjust(component, change, reason) {
        tracing::error!(error = %e, component, "cannot record the trust change");
    }
}
