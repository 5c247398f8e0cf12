//! The executor: runs one playbook for one incident. Steps run in order, each attempt
//! bounded by its timeout and retried as the step allows; a parallel group runs its
//! steps at once and waits for all. Every finished step becomes a `StepRecord`, is
//! published as `playbook.step` and appended to the audit log; the run's duration is
//! compared with the playbook's SLO.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::action::{is_skipped, ActionContext, ActionRegistry, Escalation};
use super::harm::{self, DisruptionBudget};
use super::model::{Playbook, Step};
use super::outcome::{self, Attempt, StepStatus};
use super::steady;
use super::template::Vars;
use super::validate::expanded_args;
use super::verify::Probe;
use crate::bus::Topic;
use crate::incident::{Incident, StepRecord};
use crate::tree::System;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The incident.
    pub incident_id: String,
    /// The playbook.
    pub playbook: String,
    /// The component.
    pub component: String,
    /// Every step, in the order they finished (a parallel group after its steps).
    pub steps: Vec<StepRecord>,
    /// Whether every step succeeded, or failed with `continue_on_failure`.
    pub success: bool,
    /// Set when a step escalated the incident: the reason.
    pub escalated: Option<String>,
    /// The first step that failed the run.
    pub failed_step: Option<String>,
    /// Whether the run was a dry run.
    pub dry_run: bool,
    /// Wall time of the run, milliseconds.
    pub duration_ms: u64,
    /// The playbook's SLO, milliseconds.
    pub slo_ms: Option<u64>,
    /// Whether the run met its SLO (None without an SLO).
    pub slo_met: Option<bool>,
}

/// Everything a run needs.
#[derive(Clone)]
pub struct Run {
    /// The running system.
    pub system: Arc<System>,
    /// The actions steps may use.
    pub actions: Arc<ActionRegistry>,
    /// The playbook.
    pub playbook: Arc<Playbook>,
    /// The incident it remediates.
    pub incident: Arc<Incident>,
    /// Log and record each step instead of running it.
    pub dry_run: bool,
    /// The room automation has for disrupting components (shared by every run).
    pub budget: Arc<DisruptionBudget>,
}

/// Collects step records and reports each one as it finishes.
struct Recorder<'a> {
    run: &'a Run,
    records: Mutex<Vec<StepRecord>>,
}

impl Recorder<'_> {
    fn record(&self, r: StepRecord) {
        let run = self.run;
        let inc = &run.incident;
        tracing::info!(
            incident = %inc.incident_id, playbook = %run.playbook.name, step = %r.name,
            action = %r.action, status = %r.status, attempts = r.attempts, duration_ms = r.duration_ms,
            "playbook step"
        );
        let payload =
            json!({ "incident_id": inc.incident_id, "playbook": run.playbook.name, "step": r });
        if let Err(e) = run.system.audit.append("playbook.step", payload.clone()) {
            tracing::error!(error = %e, "cannot append playbook step to the audit log");
        }
        run.system
            .bus
            .emit(Topic::PlaybookStep, Some(&inc.component), payload);
        self.records.lock().push(r);
    }

    /// Whether a step recorded so far failed (a repair was tried and did not work).
    fn any_failed(&self) -> bool {
        self.records
            .lock()
            .iter()
            .any(|r| r.status == "failed" || r.status == "timed_out")
    }
}

fn record(
    name: &str,
    action: &str,
    status: StepStatus,
    attempts: u32,
    took: Duration,
    output: Value,
) -> StepRecord {
    StepRecord {
        name: name.to_owned(),
        action: action.to_owned(),
        status: status.as_str().to_owned(),
        attempts,
        duration_ms: took.as_millis() as u64,
        output,
        available_before: None,
        available_after: None,
    }
}

impl Run {
    /// Runs the playbook to the end and reports what it did.
    pub async fn execute(&self) -> RunReport {
        let pb = &self.playbook;
        let inc = &self.incident;
        let escalation = Arc::new(Escalation::default());
        let rec = Recorder {
            run: self,
            records: Mutex::new(Vec::new()),
        };
        self.system.bus.emit(
            Topic::PlaybookStarted,
            Some(&inc.component),
            json!({
                "incident_id": inc.incident_id, "playbook": pb.name, "component": inc.component,
                "trigger": inc.trigger, "steps": pb.steps.len(), "dry_run": self.dry_run,
            }),
        );
        let t0 = Instant::now();
        let mut top = Vec::with_capacity(pb.steps.len());
        let mut failed_step: Option<String> = None;
        for step in &pb.steps {
            if let Some(f) = &failed_step {
                let out = json!({ "reason": format!("not run: step {f:?} failed") });
                rec.record(record(
                    &step.name,
                    step_action(step),
                    StepStatus::Skipped,
                    0,
                    Duration::ZERO,
                    out,
                ));
                continue;
            }
            let status = self.step(step, &rec, &escalation).await;
            top.push((status, step.continue_on_failure));
            if outcome::stops_run(status, step.continue_on_failure) {
                failed_step = Some(step.name.clone());
            }
        }
        let took = t0.elapsed();
        let slo = pb.slo.map(|s| s.0);
        let report = RunReport {
            incident_id: inc.incident_id.clone(),
            playbook: pb.name.clone(),
            component: inc.component.clone(),
            steps: rec.records.into_inner(),
            success: outcome::run_succeeded(&top),
            escalated: escalation.get(),
            failed_step,
            dry_run: self.dry_run,
            duration_ms: took.as_millis() as u64,
            slo_ms: slo.map(|s| s.as_millis() as u64),
            slo_met: outcome::slo_met(took, slo),
        };
        let summary = json!({
            "incident_id": report.incident_id, "playbook": report.playbook,
            "component": report.component, "success": report.success,
            "escalated": report.escalated, "failed_step": report.failed_step,
            "dry_run": report.dry_run, "duration_ms": report.duration_ms,
            "slo_ms": report.slo_ms, "slo_met": report.slo_met, "steps": report.steps.len(),
        });
        self.system
            .bus
            .emit(Topic::PlaybookFinished, Some(&inc.component), summary);
        report
    }

    /// Runs one top-level step (an action or a parallel group); returns its status.
    async fn step(&self, step: &Step, rec: &Recorder<'_>, esc: &Arc<Escalation>) -> StepStatus {
        let Some(group) = &step.parallel else {
            return self.action_step(step, rec, esc).await;
        };
        let t0 = Instant::now();
        let results =
            futures::future::join_all(group.iter().map(|s| async move {
                (self.action_step(s, rec, esc).await, s.continue_on_failure)
            }))
            .await;
        let status = outcome::group_status(&results);
        let out = json!({
            "steps": group.iter().zip(&results)
                .map(|(s, (st, _))| json!({ "name": s.name, "status": st.as_str() }))
                .collect::<Vec<_>>(),
        });
        rec.record(record(&step.name, "parallel", status, 1, t0.elapsed(), out));
        status
    }

    /// Runs one action step with its retries and timeout.
    async fn action_step(
        &self,
        step: &Step,
        rec: &Recorder<'_>,
        esc: &Arc<Escalation>,
    ) -> StepStatus {
        let action_name = step_action(step);
        let t0 = Instant::now();
        let component = self.incident.component.as_str();
        let before = steady::available(&self.system, component);
        let done = |status: StepStatus, attempts: u32, out: Value| {
            let mut r = record(&step.name, action_name, status, attempts, t0.elapsed(), out);
            if attempts > 0 {
                r.available_before = before;
                r.available_after = steady::available(&self.system, component);
            }
            rec.record(r);
            status
        };
        let args = match expanded_args(step, &Vars::of(&self.incident)) {
            Ok(a) => a,
            Err(e) => return done(StepStatus::Failed, 0, json!({ "error": e.to_string() })),
        };
        if self.dry_run {
            let shown = Value::Object(args.map().clone());
            tracing::info!(
                incident = %self.incident.incident_id, playbook = %self.playbook.name,
                step = %step.name, action = action_name, args = %shown,
                "dry run: step would run"
            );
            return done(
                StepStatus::DryRun,
                0,
                json!({ "would_run": action_name, "args": args.map() }),
            );
        }
        let Some(action) = self.actions.get(action_name) else {
            let e = format!("action {action_name:?} is not registered");
            return done(StepStatus::Failed, 0, json!({ "error": e }));
        };
        if let Err(why) = self.admit_disruption(action_name, rec.any_failed()) {
            tracing::warn!(incident = %self.incident.incident_id, step = %step.name, reason = %why, "disruptive step refused");
            let mut out = super::action::skipped(why);
            out["refused"] = json!(true);
            return done(StepStatus::Skipped, 0, out);
        }
        let timeout = step
            .timeout
            .map_or(self.system.config.playbooks.step_timeout, |t| t.0);
        let mut ctx = ActionContext::new(
            self.system.clone(),
            self.incident.clone(),
            &self.playbook.name,
            &step.name,
            timeout,
            esc.clone(),
        );
        let mut errors = Vec::new();
        let mut made = 0;
        loop {
            made += 1;
            ctx.attempt = made;
            let (attempt, output) =
                match tokio::time::timeout(timeout, action.run(&ctx, &args)).await {
                    Ok(Ok(v)) if is_skipped(&v) => (Attempt::Skipped, v),
                    Ok(Ok(v)) => (Attempt::Ok, v),
                    Ok(Err(e)) => {
                        errors.push(e.to_string());
                        (
                            Attempt::Failed {
                                retryable: e.retryable(),
                            },
                            Value::Null,
                        )
                    }
                    Err(_) => {
                        errors.push(format!(
                            "attempt timed out after {}",
                            humantime::format_duration(timeout)
                        ));
                        (Attempt::TimedOut, Value::Null)
                    }
                };
            if !outcome::retry(made, step.retries, attempt) {
                let out = if attempt.status().is_failure() {
                    json!({ "error": errors.last(), "errors": errors })
                } else if errors.is_empty() {
                    output
                } else {
                    json!({ "result": output, "errors": errors })
                };
                return done(attempt.status(), made, out);
            }
            tracing::info!(
                incident = %self.incident.incident_id, step = %step.name, attempt = made,
                error = errors.last().map(String::as_str).unwrap_or(""), "step failed; retrying"
            );
            tokio::time::sleep(step.retry_delay()).await;
        }
    }
}

impl Run {
    /// Whether a disruptive action may run now (DESIGN.md, "First, do no harm").
    fn admit_disruption(&self, action: &str, repair_failed: bool) -> Result<(), String> {
        if !harm::is_disruptive(action) {
            return Ok(());
        }
        let facts = harm::Facts::of(&self.system, &self.incident, repair_failed);
        harm::permitted(action, &facts)?;
        let system = &self.system;
        self.budget.take(&self.incident.component, |c| {
            steady::available(system, c) != Some(false)
        })
    }

    /// Runs one `verify:` step once, as a probe: ok is good, a failure or timeout is
    /// bad, a skip is no evidence. Nothing is recorded in the incident.
    pub async fn probe(&self, step: &Step) -> Probe {
        let action_name = step_action(step);
        let args = match expanded_args(step, &Vars::of(&self.incident)) {
            Ok(a) => a,
            Err(e) => return Probe::Unknown(e.to_string()),
        };
        let Some(action) = self.actions.get(action_name) else {
            return Probe::Unknown(format!("action {action_name:?} is not registered"));
        };
        let timeout = step
            .timeout
            .map_or(self.system.config.playbooks.step_timeout, |t| t.0);
        let ctx = ActionContext::new(
            self.system.clone(),
            self.incident.clone(),
            &self.playbook.name,
            &step.name,
            timeout,
            Arc::new(Escalation::default()),
        );
        match tokio::time::timeout(timeout, action.run(&ctx, &args)).await {
            Ok(Ok(v)) if is_skipped(&v) => Probe::Unknown(
                v.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("skipped")
                    .to_owned(),
            ),
            Ok(Ok(_)) => Probe::Good(action_name.to_owned()),
            Ok(Err(e)) => Probe::Bad(e.to_string()),
            Err(_) => Probe::Bad(format!(
                "{action_name} timed out after {}",
                humantime::format_duration(timeout)
            )),
        }
    }
}

fn step_action(step: &Step) -> &str {
    match (&step.action, &step.parallel) {
        (Some(a), _) => a,
        (None, _) => "parallel",
    }
}
