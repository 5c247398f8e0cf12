//! The dispatcher: turns an incident event into a remediation. It opens the incident
//! (a repeat only counts), chooses the playbook, applies the rate limit, cooldown and
//! concurrency bound, runs the playbook on its own task, then closes the incident
//! (resolved, escalated or failed, with MTTR) and adjusts trust.
//!
//! Its state (run history, counters, the concurrency semaphore) lives in
//! [`Dispatcher`], outside the `self_healing` kernel, so a restart of that kernel
//! loses nothing and runs in progress carry on.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::action::{escalate_incident, ActionRegistry};
use super::executor::Run;
use super::lifecycle;
use super::limit::{Admission, Limiter, Limits};
use super::load::PlaybookSet;
use super::model::Playbook;
use super::stats::{Count, DispatcherStats};
use crate::bus::{Event, Topic};
use crate::incident::{Incident, IncidentDraft, IncidentStatus, Opened, StepRecord};
use crate::tree::System;
use crate::trust::Change;

/// The bound on an escalation (command or webhook) made by the dispatcher itself.
const ESCALATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the dispatcher did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatched {
    /// A playbook run was started (or queued for a slot) for a new incident.
    Started {
        /// The incident.
        incident_id: String,
        /// The playbook.
        playbook: String,
    },
    /// The incident is handed to a human at once: no playbook, approval required,
    /// rate limited or cooling down.
    Escalating {
        /// The incident.
        incident_id: String,
        /// Why.
        reason: String,
    },
    /// The event repeated an open incident; counted only.
    Repeat {
        /// The open incident.
        incident_id: String,
    },
    /// The event was not an incident draft.
    Ignored(String),
}

/// The shared state of the playbook dispatcher.
pub struct Dispatcher {
    playbooks: RwLock<Arc<PlaybookSet>>,
    actions: Arc<ActionRegistry>,
    limiter: Limiter,
    permits: Arc<Semaphore>,
    stats: Arc<DispatcherStats>,
}

impl Dispatcher {
    /// A dispatcher over `playbooks` and `actions`, running at most `max_concurrent`
    /// playbooks at once.
    pub fn new(
        playbooks: PlaybookSet,
        actions: ActionRegistry,
        max_concurrent: usize,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            playbooks: RwLock::new(Arc::new(playbooks)),
            actions: Arc::new(actions),
            limiter: Limiter::default(),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            stats: Arc::new(DispatcherStats::default()),
        })
    }

    /// The dispatcher of a serve: the playbooks `config` asks for (defaults, then the
    /// directory beside `config_file`), checked against `actions`, with
    /// `[playbooks] max_concurrent`.
    pub fn from_config(
        config: &crate::config::Config,
        config_file: Option<&std::path::Path>,
        actions: ActionRegistry,
    ) -> Result<Arc<Dispatcher>, crate::config::ConfigError> {
        let set = super::load::load_configured(&config.playbooks, config_file, &actions)?;
        Ok(Dispatcher::new(
            set,
            actions,
            config.playbooks.max_concurrent,
        ))
    }

    /// The counters (shared: the dashboard keeps the `Arc`).
    pub fn stats(&self) -> Arc<DispatcherStats> {
        self.stats.clone()
    }

    /// The playbooks in use.
    pub fn playbooks(&self) -> Arc<PlaybookSet> {
        self.playbooks.read().clone()
    }

    /// Replaces the playbooks (runs in progress keep theirs).
    pub fn set_playbooks(&self, set: PlaybookSet) {
        *self.playbooks.write() = Arc::new(set);
    }

    /// Handles one `event.incident`, `event.emergency` or `event.early_warning`.
    /// Returns at once: the run goes on its own task.
    pub fn dispatch(self: &Arc<Self>, system: &Arc<System>, event: &Event) -> Dispatched {
        let draft: IncidentDraft = match serde_json::from_value(event.payload.clone()) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(topic = %event.topic, error = %e, "event payload is not an incident draft; ignored");
                return Dispatched::Ignored(e.to_string());
            }
        };
        self.stats.bump(Count::Received);
        let inc = match lifecycle::open(system, &draft) {
            Opened::Repeat {
                incident_id,
                occurrences,
            } => {
                self.stats.bump(Count::Repeat);
                let why = format!("incident {incident_id} repeated ({occurrences} times)");
                lifecycle::trust(system, &draft.component, Change::RepeatedIncident, &why);
                return Dispatched::Repeat { incident_id };
            }
            Opened::New(inc) => Arc::new(inc),
        };
        if draft.failure_mode == crate::trigger::flap::FLAPPING {
            // Remediating a condition that comes and goes would loop: a human decides.
            let reason = "the condition is flapping; remediation is suppressed until it settles";
            return self.escalate_now(system, inc, None, reason.to_owned());
        }
        let id = inc.incident_id.clone();
        let playbook = match self.playbooks().select(&draft, event.topic) {
            Ok(p) => p,
            Err(reason) => {
                self.stats.bump(Count::Unmatched);
                return self.escalate_now(system, inc, None, reason);
            }
        };
        if playbook.requires_approval {
            let reason = format!("playbook {} requires approval", playbook.name);
            return self.escalate_now(system, inc, Some(&playbook), reason);
        }
        let limits = Limits::new(
            playbook.rate_limit.map(|r| (r.max, r.window.0)),
            playbook.cooldown.map(|c| c.0),
        );
        let now = crate::time::mono_ms();
        match self
            .limiter
            .try_start(&playbook.name, &inc.component, now, limits)
        {
            Admission::Run => {}
            refused => {
                self.stats.rate_limited(&playbook.name);
                if let Admission::CoolingDown { .. } = refused {
                    // The same component needs the same playbook again before its
                    // cooldown is over: the last remediation did not hold. That is a
                    // repeated incident, and costs trust like a repeat while open.
                    let why = format!(
                        "{} came back on {} while playbook {} cools down",
                        draft.trigger, inc.component, playbook.name
                    );
                    lifecycle::trust(system, &inc.component, Change::RepeatedIncident, &why);
                }
                let reason = match refused {
                    Admission::RateLimited { retry_after_ms } => format!(
                        "playbook {} is rate limited (next run possible in {} s)",
                        playbook.name,
                        retry_after_ms.div_ceil(1000)
                    ),
                    _ => format!(
                        "playbook {} is cooling down for {}",
                        playbook.name, inc.component
                    ),
                };
                return self.escalate_now(system, inc, Some(&playbook), reason);
            }
        }
        let dry_run = playbook.dry_run || system.config.playbooks.dry_run;
        let run = Run {
            system: system.clone(),
            actions: self.actions.clone(),
            playbook: playbook.clone(),
            incident: inc,
            dry_run,
        };
        self.stats.queued();
        let me = self.clone();
        tokio::spawn(async move { me.remediate(run).await });
        Dispatched::Started {
            incident_id: id,
            playbook: playbook.name.clone(),
        }
    }

    /// Closes an incident as escalated without running anything (on its own task, as
    /// the escalation may run a command or call a webhook).
    fn escalate_now(
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
        tokio::spawn(async move {
            me.escalate_and_close(&system, &inc, &why, Vec::new(), details)
                .await;
        });
        Dispatched::Escalating {
            incident_id: id,
            reason,
        }
    }

    /// Runs the escalation mechanism, then closes the incident: `escalated` when it
    /// went through, `failed` when it did not.
    async fn escalate_and_close(
        &self,
        system: &Arc<System>,
        inc: &Incident,
        reason: &str,
        steps: Vec<StepRecord>,
        mut details: Value,
    ) -> Incident {
        let status = match escalate_incident(system, inc, reason, ESCALATION_TIMEOUT).await {
            Ok(out) => {
                details["escalation"] = out;
                IncidentStatus::Escalated
            }
            Err(e) => {
                tracing::error!(incident = %inc.incident_id, error = %e, "escalation failed");
                details["escalation_error"] = json!(e.to_string());
                IncidentStatus::Failed
            }
        };
        details["escalation_reason"] = json!(reason);
        self.close(system, inc, status, steps, details)
    }

    /// Closes the incident and publishes `incident.resolved` or `incident.escalated`.
    fn close(
        &self,
        system: &Arc<System>,
        inc: &Incident,
        status: IncidentStatus,
        steps: Vec<StepRecord>,
        details: Value,
    ) -> Incident {
        let closed = lifecycle::close(system, inc, status, steps, details);
        let topic = if status == IncidentStatus::Escalated {
            self.stats.bump(Count::Escalated);
            Topic::IncidentEscalated
        } else {
            Topic::IncidentResolved
        };
        system.bus.emit(
            topic,
            Some(&closed.component),
            json!({
                "incident_id": closed.incident_id, "status": closed.status,
                "component": closed.component, "playbook": closed.playbook,
                "mttr_seconds": closed.mttr_seconds, "success": closed.success,
            }),
        );
        closed
    }

    /// Runs a playbook to the end and closes its incident.
    async fn remediate(self: Arc<Self>, run: Run) {
        // The semaphore is never closed; a failure here would only mean no bound.
        let _permit = self.permits.clone().acquire_owned().await.ok();
        let (system, inc, pb) = (
            run.system.clone(),
            run.incident.clone(),
            run.playbook.clone(),
        );
        self.stats.started(&pb.name);
        lifecycle::mitigating(&system, &inc, &pb.name);
        let report = run.execute().await;
        let remediated = report.success && report.escalated.is_none() && !report.dry_run;
        self.stats.finished(&pb.name, remediated, report.slo_met);
        let details = json!({
            "playbook": pb.name, "duration_ms": report.duration_ms, "slo_ms": report.slo_ms,
            "slo_met": report.slo_met, "dry_run": report.dry_run, "failed_step": report.failed_step,
            "success": report.success,
        });
        let mut audit = details.clone();
        audit["incident_id"] = json!(inc.incident_id);
        if let Err(e) = system.audit.append("playbook.run", audit) {
            tracing::error!(error = %e, "cannot append playbook run to the audit log");
        }
        let steps = report.steps;
        if remediated {
            let why = format!("remediated by {}", pb.name);
            lifecycle::trust(&system, &inc.component, Change::Reward, &why);
            self.close(&system, &inc, IncidentStatus::Resolved, steps, details);
        } else if let Some(reason) = &report.escalated {
            tracing::info!(incident = %inc.incident_id, %reason, "escalated by its playbook");
            self.close(&system, &inc, IncidentStatus::Escalated, steps, details);
        } else if report.dry_run {
            let reason = format!("dry run of playbook {}: nothing was done", pb.name);
            self.escalate_and_close(&system, &inc, &reason, steps, details)
                .await;
        } else {
            let reason = match &report.failed_step {
                Some(s) => format!("playbook {} failed at step {s}", pb.name),
                None => format!("playbook {} failed", pb.name),
            };
            lifecycle::trust(&system, &inc.component, Change::Failure, &reason);
            self.escalate_and_close(&system, &inc, &reason, steps, details)
                .await;
        }
        self.limiter
            .finished(&pb.name, &inc.component, crate::time::mono_ms());
    }
}
