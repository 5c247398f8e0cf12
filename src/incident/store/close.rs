//! Closing incidents: the final status, why ([`ClosedReason`], set on every close), the
//! steps run, what the run found, and the recovery time MTTR is measured to.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::changes::{now_rfc3339, parse_time};
use super::{IncidentError, IncidentStore};
use crate::incident::model::{ClosedReason, Incident, IncidentStatus, StepRecord};

/// How an incident is closed: see [`IncidentStore::close`].
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    /// The final status: resolved, escalated or failed.
    pub status: IncidentStatus,
    /// Why it was closed.
    pub reason: ClosedReason,
    /// Whether remediation succeeded.
    pub success: bool,
    /// The steps run, added to those already recorded.
    pub steps: Vec<StepRecord>,
    /// What the run found (its SLO, duration, verification, escalation), recorded
    /// under `details.remediation`; null: nothing.
    pub remediation: Value,
    /// When recovery was verified, which MTTR is measured to; None: now.
    pub recovered_at: Option<DateTime<Utc>>,
}

impl Closing {
    /// A close with `status` and `reason`; success when the status is `resolved`, no
    /// steps, recovered now.
    pub fn new(status: IncidentStatus, reason: ClosedReason) -> Closing {
        Closing {
            status,
            reason,
            success: status == IncidentStatus::Resolved,
            steps: Vec::new(),
            remediation: Value::Null,
            recovered_at: None,
        }
    }

    /// The reason a close by status alone implies: resolved → verified, escalated →
    /// escalated, failed → remediation_failed.
    pub fn default_reason(status: IncidentStatus) -> ClosedReason {
        match status {
            IncidentStatus::Escalated => ClosedReason::Escalated,
            IncidentStatus::Failed => ClosedReason::RemediationFailed,
            _ => ClosedReason::Verified,
        }
    }

    /// With the steps run.
    pub fn steps(mut self, steps: Vec<StepRecord>) -> Closing {
        self.steps = steps;
        self
    }

    /// With what the run found.
    pub fn remediation(mut self, remediation: Value) -> Closing {
        self.remediation = remediation;
        self
    }

    /// With the moment recovery was verified.
    pub fn recovered_at(mut self, at: DateTime<Utc>) -> Closing {
        self.recovered_at = Some(at);
        self
    }

    /// With an explicit success flag.
    pub fn success(mut self, success: bool) -> Closing {
        self.success = success;
        self
    }
}

/// Sets the closing fields of `inc`: status, reason, `resolved_at` and
/// `mttr_seconds` = resolved_at − detected_at (never negative), success, steps, and
/// `details.remediation`.
pub(super) fn apply(inc: &mut Incident, c: Closing) {
    let at = c.recovered_at.unwrap_or_else(crate::time::now);
    let mttr = parse_time(&inc.detected_at)
        .map(|d| ((at - d).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0));
    inc.status = c.status;
    inc.closed_reason = Some(c.reason);
    inc.resolved_at = Some(now_rfc3339(at));
    inc.mttr_seconds = mttr;
    inc.success = Some(c.success);
    inc.steps.extend(c.steps);
    if !c.remediation.is_null() {
        match &mut inc.details {
            Value::Object(d) => {
                d.insert("remediation".to_owned(), c.remediation);
            }
            Value::Null => inc.details = json!({ "remediation": c.remediation }),
            other => {
                let trigger = other.take();
                inc.details = json!({ "trigger": trigger, "remediation": c.remediation });
            }
        }
    }
}

impl IncidentStore {
    /// Closes an open incident (orphans included) as `closing` says, with
    /// `mttr_seconds` = recovered_at − detected_at.
    ///
    /// When the close cannot be recorded the incident stays open in memory but becomes
    /// an orphan: the caller goes on as if it were closed, so no new occurrence may be
    /// attached to it.
    pub fn close(&self, id: &str, closing: Closing) -> Result<Incident, IncidentError> {
        let status = closing.status;
        if status.is_open() {
            return Err(IncidentError::NotTerminal(status));
        }
        let mut g = self.inner.lock();
        let Some(mut inc) = g.open.get(id).cloned() else {
            return Err(self.missing(&g, id));
        };
        let before = inc.status;
        apply(&mut inc, closing);
        let key = (inc.trigger.clone(), inc.component.clone());
        let r = match self.record(&mut g, &format!("incident.{status}"), &inc) {
            Ok(r) => r,
            Err(e) => {
                if g.dedup.get(&key).is_some_and(|v| v == id) {
                    g.dedup.remove(&key);
                }
                g.orphans.insert(id.to_owned());
                return Err(e);
            }
        };
        g.counts.moved(before, status);
        if let Some(m) = inc.mttr_seconds {
            g.mttrs.push(m);
        }
        g.open.remove(id);
        g.orphans.remove(id);
        if g.dedup.get(&key).is_some_and(|v| v == id) {
            g.dedup.remove(&key);
        }
        g.remember_closed(inc.clone());
        drop(g);
        self.settle(r)?;
        Ok(inc)
    }

    /// Closes an open incident with `status` (resolved, escalated or failed), whether
    /// remediation succeeded, and the steps run (added to those recorded); the reason is
    /// the one the status implies ([`Closing::default_reason`]). Sets `resolved_at` to
    /// now and `mttr_seconds` = resolved_at − detected_at.
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
        self.close(
            id,
            Closing::new(status, Closing::default_reason(status))
                .success(success)
                .steps(steps)
                .remediation(remediation),
        )
    }
}
