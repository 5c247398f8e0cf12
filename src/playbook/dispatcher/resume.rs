//! No incident is left behind: at start, the dispatcher takes over every incident an
//! earlier run of serve left `open`, `mitigating` or `verifying`, and checks its
//! condition again. Recovered (the restart itself ended the fault): closed `resolved`
//! with reason `recovered_by_restart`. Still there: its playbook runs again on the same
//! incident, through the same verification. Nothing can check it any more (its trigger
//! is gone and its component is no kernel): closed `failed` as `abandoned`.

use std::sync::Arc;

use serde_json::json;
use tracing::Instrument;

use super::remediate::verify_incident;
use super::Dispatcher;
use crate::bus::Topic;
use crate::incident::{ClosedReason, Closing, Incident, IncidentDraft, IncidentStatus};
use crate::playbook::executor::Run;
use crate::playbook::verify::Verdict;
use crate::tree::System;

impl Dispatcher {
    /// Takes over the incidents an earlier serve left open; returns how many. Each is
    /// checked on its own task.
    pub fn resume(self: &Arc<Self>, system: &Arc<System>) -> usize {
        let orphans = system.incidents.orphans();
        for inc in &orphans {
            let me = self.clone();
            let system = system.clone();
            let inc = inc.clone();
            let span = super::incident_span(&inc, inc.playbook.as_deref());
            tokio::spawn(async move { me.resume_one(&system, inc).await }.instrument(span));
        }
        if !orphans.is_empty() {
            tracing::info!(
                count = orphans.len(),
                "taking over incidents an earlier run left open"
            );
        }
        orphans.len()
    }

    async fn resume_one(self: Arc<Self>, system: &Arc<System>, inc: Incident) {
        let inc = match system.incidents.adopt(&inc.incident_id) {
            Ok(i) => Arc::new(i),
            Err(e) => {
                tracing::warn!(incident = %inc.incident_id, error = %e, "cannot take over the incident");
                return;
            }
        };
        let draft = draft_of(&inc);
        let playbook = inc
            .playbook
            .as_deref()
            .and_then(|p| self.playbooks().get(p))
            .or_else(|| self.playbooks().select(&draft, Topic::EventIncident).ok());
        let Some(playbook) = playbook else {
            let reason = "taken over after a restart of serve, and no playbook answers it";
            self.escalate_now(system, inc, None, reason.to_owned());
            return;
        };
        let run = Run {
            system: system.clone(),
            actions: self.actions.clone(),
            playbook,
            incident: inc.clone(),
            dry_run: false,
            budget: self.budget.clone(),
        };
        let v = verify_incident(&run, system.config.playbooks.verify).await;
        let base = json!({
            "resumed_after_restart": true, "previous_status": inc.status,
            "verification": { "samples": v.samples, "last_sample": v.last },
        });
        match v.verdict {
            Verdict::Recovered { since_ms } => {
                let at = v
                    .recovered_at
                    .unwrap_or_else(|| super::remediate::wall_of(since_ms));
                let mut c = Closing::new(
                    IncidentStatus::Resolved,
                    Closing::default_reason(IncidentStatus::Resolved),
                );
                c.reason = ClosedReason::RecoveredByRestart;
                c.recovered_at = Some(at);
                c.remediation = base;
                tracing::info!(incident = %inc.incident_id, "recovered by the restart of serve");
                self.close(system, &inc, c);
            }
            Verdict::Unverifiable { reason } => {
                let mut c = Closing::new(
                    IncidentStatus::Failed,
                    Closing::default_reason(IncidentStatus::Failed),
                );
                c.reason = ClosedReason::Abandoned;
                c.remediation = base;
                let why =
                    format!("left open by an earlier run and cannot be checked again: {reason}");
                self.escalate_and_close(system, &inc, &why, c).await;
            }
            _ => {
                tracing::info!(incident = %inc.incident_id, playbook = %run.playbook.name, "condition still holds; remediation resumes");
                self.stats.queued();
                self.clone().remediate(run).await;
            }
        }
    }
}

/// The draft an incident was opened from, for choosing its playbook again.
fn draft_of(inc: &Incident) -> IncidentDraft {
    IncidentDraft {
        trigger: inc.trigger.clone(),
        component: inc.component.clone(),
        failure_mode: inc.failure_mode.clone(),
        severity: inc.severity,
        playbook: inc.playbook.clone(),
        summary: inc.summary.clone(),
        details: inc.details.clone(),
        detected_at: Some(inc.detected_at.clone()),
    }
}
