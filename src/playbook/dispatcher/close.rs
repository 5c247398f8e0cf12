//! How the dispatcher ends an incident: escalation (a command or webhook for a human),
//! closing with a status and a reason, the bus event that says so, and the report of a
//! condition nothing can act on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tracing::Instrument;

use super::{Dispatched, Dispatcher};
use crate::bus::Topic;
use crate::incident::{ClosedReason, Closing, Incident, IncidentDraft, IncidentStatus};
use crate::playbook::action::escalate_incident;
use crate::playbook::lifecycle;
use crate::playbook::model::Playbook;
use crate::playbook::stats::Count;
use crate::tree::System;

/// The bound on an escalation (command or webhook) made by the dispatcher itself.
const ESCALATION_TIMEOUT: Duration = Duration::from_secs(30);

impl Dispatcher {
    /// Closes an incident as escalated without running anything (on its own task, as
    /// the escalation may run a command or call a webhook).
    pub(super) fn escalate_now(
        self: &Arc<Self>,
        system: &Arc<System>,
        inc: Arc<Incident>,
        playbook: Option<&Playbook>,
        reason: String,
    ) -> Dispatched {
        tracing::warn!(incident = %inc.incident_id, component = %inc.component, %reason, "not remediating");
        let me = self.clone();
        let system = system.clone();
        let id = inc.incident_id.clone();
        let details = json!({ "playbook": playbook.map(|p| p.name.clone()), "not_run": reason });
        let why = reason.clone();
        let span = super::incident_span(&inc, playbook.map(|p| p.name.as_str()));
        tokio::spawn(
            async move {
                let mut c = Closing::new(
                    IncidentStatus::Escalated,
                    Closing::default_reason(IncidentStatus::Escalated),
                );
                c.remediation = details;
                me.escalate_and_close(&system, &inc, &why, c).await;
            }
            .instrument(span),
        );
        Dispatched::Escalating {
            incident_id: id,
            reason,
        }
    }

    /// Runs the escalation mechanism, then closes the incident as `c` says; an
    /// escalation that did not go through turns `escalated` into `failed` (a failed
    /// incident stays failed either way), and is recorded.
    pub(super) async fn escalate_and_close(
        &self,
        system: &Arc<System>,
        inc: &Incident,
        reason: &str,
        mut c: Closing,
    ) -> Incident {
        if c.remediation.is_null() {
            c.remediation = json!({});
        }
        match escalate_incident(system, inc, reason, ESCALATION_TIMEOUT).await {
            Ok(out) => c.remediation["escalation"] = out,
            Err(e) => {
                tracing::error!(incident = %inc.incident_id, error = %e, "escalation failed");
                c.remediation["escalation_error"] = json!(e.to_string());
                c.status = IncidentStatus::Failed;
            }
        }
        c.remediation["escalation_reason"] = json!(reason);
        self.close(system, inc, c)
    }

    /// Closes the incident and publishes `incident.resolved` or `incident.escalated`.
    pub(super) fn close(&self, system: &Arc<System>, inc: &Incident, c: Closing) -> Incident {
        let status = c.status;
        let closed = lifecycle::close(system, inc, c);
        let topic = if status == IncidentStatus::Escalated {
            self.stats.bump(Count::Escalated);
            Topic::IncidentEscalated
        } else {
            Topic::IncidentResolved
        };
        notify_verdict(system, &closed);
        system.bus.emit(
            topic,
            Some(&closed.component),
            json!({
                "incident_id": closed.incident_id, "status": closed.status,
                "closed_reason": closed.closed_reason,
                "component": closed.component, "playbook": closed.playbook,
                "mttr_seconds": closed.mttr_seconds, "success": closed.success,
            }),
        );
        closed
    }
}

/// Tells what became of an incident, in words that claim only what was found: an
/// `info` alert for a verified recovery, a `warning` for anything else.
fn notify_verdict(system: &System, closed: &Incident) {
    let reason = closed
        .closed_reason
        .map_or("unknown", crate::incident::ClosedReason::as_str);
    let (severity, said) = match (closed.status, closed.closed_reason) {
        (IncidentStatus::Resolved, Some(ClosedReason::Verified)) => (
            crate::alerts::Severity::Info,
            "recovery verified after remediation",
        ),
        (IncidentStatus::Resolved, _) => (
            crate::alerts::Severity::Info,
            "recovered, though remediation did nothing",
        ),
        (IncidentStatus::Escalated, _) => (crate::alerts::Severity::Warning, "handed to a human"),
        _ => (
            crate::alerts::Severity::Warning,
            "not recovered: remediation failed or did not hold",
        ),
    };
    let mttr = closed
        .mttr_seconds
        .map(|m| format!("; MTTR {}", crate::incident::format_seconds(m)))
        .unwrap_or_default();
    let summary = format!(
        "incident {} ({} on {}) {}: {said} ({reason}){mttr}",
        closed.incident_id, closed.trigger, closed.component, closed.status
    );
    let payload = json!({
        "incident_id": closed.incident_id, "status": closed.status, "closed_reason": reason,
        "component": closed.component, "trigger": closed.trigger,
        "mttr_seconds": closed.mttr_seconds,
    });
    lifecycle::alert(system, severity, "incident.closed", &summary, payload);
}

/// Reports a condition nothing Grace runs can act on: a log line and an `info` alert
/// (the trigger's deduplication bounds how often), no incident and no playbook.
pub(super) fn report_informational(system: &System, draft: &IncidentDraft, reason: &str) {
    tracing::info!(
        trigger = %draft.trigger, component = %draft.component,
        failure_mode = %draft.failure_mode, %reason, "informational condition; not remediated"
    );
    let payload = json!({
        "trigger": draft.trigger, "component": draft.component,
        "failure_mode": draft.failure_mode, "reason": reason, "details": draft.details,
    });
    let summary = format!("{} (not remediated: {reason})", draft.summary);
    let info = crate::alerts::Severity::Info;
    lifecycle::alert(system, info, "condition.informational", &summary, payload);
}

/// The closing of an incident whose playbook ran, from the verification's verdict.
pub(super) fn verdict_closing(
    recovered: Option<chrono::DateTime<chrono::Utc>>,
    acted: bool,
    run_succeeded: bool,
    unverifiable: bool,
    remediation: Value,
) -> Closing {
    let (status, reason) = match recovered {
        Some(_) if acted => (IncidentStatus::Resolved, ClosedReason::Verified),
        Some(_) => (
            IncidentStatus::Resolved,
            ClosedReason::RecoveredWithoutAction,
        ),
        None if unverifiable => (IncidentStatus::Escalated, ClosedReason::Unverified),
        None if !run_succeeded => (IncidentStatus::Failed, ClosedReason::RemediationFailed),
        None => (IncidentStatus::Failed, ClosedReason::VerificationFailed),
    };
    let mut c = Closing::new(status, reason);
    c.recovered_at = recovered;
    c.remediation = remediation;
    c
}
