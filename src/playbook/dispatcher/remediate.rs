//! One remediation, from the playbook's first step to the verdict: run the playbook,
//! then verify that the service recovered (the incident is `verifying` meanwhile), and
//! close the incident with what was found.
//!
//! An incident is `resolved` only when verification passes; its `resolved_at` is the
//! first sample of the passing streak, so MTTR runs from detection to verified
//! recovery. When the playbook's steps did nothing (skipped, refused, failed) and the
//! service recovered anyway, the reason is `recovered_without_action` and no trust is
//! earned. Otherwise the incident is `failed` and escalated with the reason.

use std::sync::Arc;

use serde_json::json;

use super::close::verdict_closing;
use super::Dispatcher;
use crate::incident::{Closing, IncidentStatus};
use crate::playbook::executor::{Run, RunReport};
use crate::playbook::lifecycle;
use crate::playbook::outcome;
use crate::playbook::steady;
use crate::playbook::verify::{Streak, Verdict, VerifySettings};
use crate::trust::Change;

/// What verification found.
pub(super) struct Verification {
    /// The verdict.
    pub verdict: Verdict,
    /// Samples taken.
    pub samples: u32,
    /// The last sample, as recorded in the incident.
    pub last: serde_json::Value,
    /// When verification ran, milliseconds.
    pub took_ms: u64,
    /// When the passing streak began (wall clock), for a recovery.
    pub recovered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Samples the incident's steady state until the verdict.
pub(super) async fn verify_incident(run: &Run, settings: VerifySettings) -> Verification {
    let t0 = crate::time::mono_ms();
    let mut streak = Streak::new(settings, t0);
    let extra = run
        .playbook
        .verify
        .as_ref()
        .map(|v| v.steps.as_slice())
        .unwrap_or_default();
    let expect = run
        .playbook
        .verify
        .as_ref()
        .map(|v| v.component)
        .unwrap_or_default();
    // When each sample's findings were in, by monotonic ms: a recovery is dated by the
    // wall clock read when its first good sample was seen, not converted back later.
    let mut began: Vec<(u64, chrono::DateTime<chrono::Utc>)> = Vec::new();
    loop {
        let mut sample = steady::sample(&run.system, &run.incident, expect).await;
        for step in extra {
            let p = run.probe(step).await;
            sample.add(format!("verify step {}", step.name), p);
        }
        let at = (crate::time::mono_ms(), crate::time::now());
        began.push(at);
        let verdict = streak.observe(&sample.verdict(), at.0);
        let now = crate::time::mono_ms();
        if verdict != Verdict::Pending {
            let recovered_at = match verdict {
                Verdict::Recovered { since_ms } => began
                    .iter()
                    .find(|(m, _)| *m == since_ms)
                    .map(|(_, w)| *w)
                    .or_else(|| Some(wall_of(since_ms))),
                _ => None,
            };
            return Verification {
                recovered_at,
                verdict,
                samples: streak.samples(),
                last: serde_json::to_value(&sample).unwrap_or_default(),
                took_ms: now.saturating_sub(t0),
            };
        }
        tokio::time::sleep(settings.interval).await;
    }
}

/// The wall-clock time of monotonic instant `mono_ms`.
pub(super) fn wall_of(mono_ms: u64) -> chrono::DateTime<chrono::Utc> {
    let ago = crate::time::mono_ms().saturating_sub(mono_ms);
    crate::time::now() - chrono::Duration::milliseconds(i64::try_from(ago).unwrap_or(0))
}

impl Dispatcher {
    /// Runs a playbook to the end, verifies recovery and closes its incident.
    pub(super) async fn remediate(self: Arc<Self>, run: Run) {
        // The semaphore is never closed; a failure here would only mean no bound.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let (system, inc, pb) = (
            run.system.clone(),
            run.incident.clone(),
            run.playbook.clone(),
        );
        self.stats.started(&pb.name);
        lifecycle::mitigating(&system, &inc, &pb.name);
        let report = run.execute().await;
        // Verification holds no slot: other incidents' playbooks may run meanwhile.
        drop(permit);
        self.limiter
            .finished(&pb.name, &inc.component, crate::time::mono_ms());
        let mut details = run_details(&report);
        let mut audit = details.clone();
        audit["incident_id"] = json!(inc.incident_id);
        if let Err(e) = system.audit.append("playbook.run", audit) {
            tracing::error!(error = %e, "cannot append playbook run to the audit log");
        }
        let steps = report.steps.clone();
        if let Some(reason) = &report.escalated {
            tracing::info!(incident = %inc.incident_id, %reason, "escalated by its playbook");
            self.stats.finished(&pb.name, false, report.slo_met);
            let mut c = Closing::new(
                IncidentStatus::Escalated,
                Closing::default_reason(IncidentStatus::Escalated),
            );
            c.steps = steps;
            c.remediation = details;
            self.close(&system, &inc, c);
            return;
        }
        if report.dry_run {
            self.stats.finished(&pb.name, false, report.slo_met);
            let reason = format!("dry run of playbook {}: nothing was done", pb.name);
            let mut c = Closing::new(
                IncidentStatus::Escalated,
                Closing::default_reason(IncidentStatus::Escalated),
            );
            c.steps = steps;
            c.remediation = details;
            self.escalate_and_close(&system, &inc, &reason, c).await;
            return;
        }
        lifecycle::verifying(&system, &inc);
        let settings = match &pb.verify {
            Some(o) => system.config.playbooks.verify.with(o),
            None => system.config.playbooks.verify,
        };
        let v = verify_incident(&run, settings).await;
        let acted = outcome::acted(&report.steps);
        details["acted"] = json!(acted);
        details["verification"] = json!({
            "samples": v.samples, "took_ms": v.took_ms, "last_sample": v.last,
            "window_ms": settings.window.as_millis() as u64, "successes": settings.successes,
        });
        let (recovered, failure) = match &v.verdict {
            Verdict::Recovered { .. } => (v.recovered_at, None),
            Verdict::NotRecovered { reason } | Verdict::Unverifiable { reason } => {
                (None, Some(reason.clone()))
            }
            Verdict::Pending => (None, Some("verification ended early".to_owned())),
        };
        let unverifiable = matches!(v.verdict, Verdict::Unverifiable { .. });
        if let Some(f) = &failure {
            details["verification"]["failure"] = json!(f);
        }
        let mut c = verdict_closing(recovered, acted, report.success, unverifiable, details);
        c.steps = steps;
        let verified = recovered.is_some();
        self.stats.finished(&pb.name, verified, report.slo_met);
        match failure {
            None => {
                if acted && report.success {
                    let why = format!("recovery verified after {}", pb.name);
                    lifecycle::trust(&system, &inc.component, Change::Reward, &why);
                }
                tracing::info!(incident = %inc.incident_id, reason = %c.reason, "recovery verified");
                self.close(&system, &inc, c);
            }
            Some(f) => {
                let reason = match &report.failed_step {
                    Some(s) => format!("playbook {} failed at step {s}; {f}", pb.name),
                    None if unverifiable => format!(
                        "playbook {} ran, but nothing could verify recovery: {f}",
                        pb.name
                    ),
                    None => format!(
                        "playbook {} ran, but the service did not recover: {f}",
                        pb.name
                    ),
                };
                lifecycle::trust(&system, &inc.component, Change::Failure, &reason);
                tracing::warn!(incident = %inc.incident_id, %reason, "recovery not verified");
                self.escalate_and_close(&system, &inc, &reason, c).await;
            }
        }
        if steady::available(&system, &inc.component) != Some(false) {
            self.budget.release(&inc.component);
        }
    }
}

/// What the run did, as recorded under the incident's `details.remediation`.
fn run_details(report: &RunReport) -> serde_json::Value {
    json!({
        "playbook": report.playbook, "duration_ms": report.duration_ms, "slo_ms": report.slo_ms,
        "slo_met": report.slo_met, "dry_run": report.dry_run, "failed_step": report.failed_step,
        "success": report.success,
        "harmed": report.steps.iter().filter(|s| s.harmed()).map(|s| s.name.clone()).collect::<Vec<_>>(),
    })
}
