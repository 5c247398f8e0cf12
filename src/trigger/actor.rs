//! The kernel that runs one [`Trigger`]: it drains the trigger's bus subscription, runs
//! its check at every heartbeat tick, feeds the findings through the [`Rule`] and
//! publishes what fires.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::api::{Alert, Finding, Level, Trigger};
use super::flap::FlapChange;
use super::rule::{Gate, Rule, Step};
use super::watch::FileWatch;
use crate::bus::Subscription;
use crate::incident::{IncidentDraft, Severity};
use crate::kernel::{Kernel, KernelContext, KernelError, Request};
use crate::time::mono_ms;

/// How long one pump step waits for an event before yielding to other messages.
const PUMP_WAIT: Duration = Duration::from_millis(50);
/// Events taken per pump step at most.
const PUMP_BATCH: usize = 512;

/// A publication: what to publish, and since when its condition held.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// How it is published.
    pub level: Level,
    /// What is published.
    pub draft: IncidentDraft,
    /// When the condition began to hold (monotonic ms); None for one-off events.
    pub since_ms: Option<u64>,
}

struct Entry {
    gate: Gate,
    alert: Alert,
}

/// The conditions of one trigger and its counters. It lives outside the trigger's
/// actor (its [`super::trigger_spec`] factory holds it), so a restarted trigger keeps
/// its `for` timers, deduplication and flap history.
#[derive(Default)]
pub struct GateBook {
    gates: HashMap<String, Entry>,
    published: u64,
    suppressed: u64,
    flap_warnings: u64,
    checks: u64,
}

impl GateBook {
    /// Applies one check's findings at monotonic time `now_ms` and returns what to
    /// publish. Conditions not found this time are fed as cleared.
    pub fn apply(&mut self, findings: Vec<Finding>, now_ms: u64, rule: &Rule) -> Vec<Outgoing> {
        self.checks += 1;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for f in findings {
            match f {
                Finding::Once(a) => out.push(Outgoing {
                    level: a.level,
                    draft: a.draft,
                    since_ms: None,
                }),
                Finding::Holds(a) => {
                    let key = a.key();
                    if !seen.insert(key.clone()) {
                        continue;
                    }
                    let hold_for = a.hold_for.unwrap_or(rule.hold_for);
                    let e = self.gates.entry(key.clone()).or_insert_with(|| Entry {
                        gate: Gate::default(),
                        alert: a.clone(),
                    });
                    e.alert = a;
                    let step = e.gate.observe(true, now_ms, hold_for, rule);
                    self.carry_out(&key, step, &mut out, rule);
                }
            }
        }
        let cleared: Vec<String> = self
            .gates
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in cleared {
            if let Some(e) = self.gates.get_mut(&key) {
                let step = e.gate.observe(false, now_ms, rule.hold_for, rule);
                self.carry_out(&key, step, &mut out, rule);
            }
        }
        self.gates.retain(|_, e| !e.gate.idle());
        out
    }

    /// Turns the step of the condition `key` into publications.
    fn carry_out(&mut self, key: &str, step: Step, out: &mut Vec<Outgoing>, rule: &Rule) {
        let Some(entry) = self.gates.get(key) else {
            return;
        };
        let alert = &entry.alert;
        match step.flap {
            Some(FlapChange::Started(p)) => {
                tracing::warn!(trigger = %alert.draft.trigger, condition = %key, percent = p, "condition is flapping; remediation suppressed");
                out.push(flapping_warning(alert, p, &entry.gate.history(), rule));
                self.flap_warnings += 1;
            }
            Some(FlapChange::Stopped(p)) => {
                tracing::info!(trigger = %alert.draft.trigger, condition = %key, percent = p, "condition stopped flapping");
            }
            None => {}
        }
        if step.suppressed {
            self.suppressed += 1;
        }
        if let Some(p) = step.publish {
            let mut draft = alert.draft.clone();
            if p.occurrence > 1 {
                if let Value::Object(m) = &mut draft.details {
                    m.insert("repeat".to_owned(), json!(p.occurrence));
                }
            }
            out.push(Outgoing {
                level: alert.level,
                draft,
                since_ms: Some(p.since),
            });
            self.published += 1;
        }
    }

    /// Counters and the conditions being tracked, for the dashboard.
    pub fn stats(&self) -> Value {
        let mut flapping: Vec<&String> = self
            .gates
            .iter()
            .filter(|(_, e)| e.gate.flapping())
            .map(|(k, _)| k)
            .collect();
        flapping.sort();
        json!({
            "checks": self.checks,
            "conditions": self.gates.len(),
            "flapping": flapping,
            "published": self.published,
            "suppressed": self.suppressed,
            "flap_warnings": self.flap_warnings,
        })
    }
}

fn flapping_warning(alert: &Alert, percent: f64, history: &str, rule: &Rule) -> Outgoing {
    let d = &alert.draft;
    let a = Alert::new(
        Level::EarlyWarning,
        &d.trigger,
        &d.component,
        super::flap::FLAPPING,
        Severity::Low,
        None,
        format!(
            "{} on {} is flapping ({percent:.0}% state change over the last 21 checks); \
             remediation is suppressed until it settles",
            d.failure_mode, d.component
        ),
    )
    .details(json!({
        "flapping_of": {
            "event": alert.level.topic().as_str(),
            "failure_mode": d.failure_mode,
            "playbook": d.playbook,
            "summary": d.summary,
        },
        "percent_state_change": percent,
        "high_threshold": rule.flap.high,
        "low_threshold": rule.flap.low,
        "history": history,
        "remediation": "suppressed",
    }));
    Outgoing {
        level: a.level,
        draft: a.draft,
        since_ms: None,
    }
}

/// Runs a [`Trigger`] as a kernel.
pub struct TriggerKernel<T: Trigger> {
    rule: Rule,
    book: Arc<Mutex<GateBook>>,
    trigger: T,
    sub: Option<Subscription>,
    generation: u64,
    events: u64,
    /// The file watch of a file trigger, and whether a check it asked for is queued.
    watch: Option<FileWatch>,
    check_queued: Arc<AtomicBool>,
    file_checks: u64,
}

impl<T: Trigger> TriggerKernel<T> {
    /// A kernel running `trigger` under `rule`, keeping its conditions in `book`.
    pub fn new(rule: Rule, book: Arc<Mutex<GateBook>>, trigger: T) -> TriggerKernel<T> {
        TriggerKernel {
            rule,
            book,
            trigger,
            sub: None,
            generation: 0,
            events: 0,
            watch: None,
            check_queued: Arc::new(AtomicBool::new(false)),
            file_checks: 0,
        }
    }

    /// One check: its findings go through the rule, what fires is published, and what
    /// holds is recorded in `System::conditions`.
    async fn check(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        if let Some(w) = &mut self.watch {
            w.rearm();
        }
        let findings = self
            .trigger
            .check(ctx)
            .await
            .map_err(|e| KernelError::failed(e.to_string()))?;
        let holding = findings
            .iter()
            .filter_map(|f| match f {
                Finding::Holds(a) => Some((
                    a.draft.trigger.clone(),
                    a.draft.component.clone(),
                    a.draft.failure_mode.clone(),
                )),
                Finding::Once(_) => None,
            })
            .collect();
        ctx.system.conditions.set(&ctx.name, holding);
        let now = mono_ms();
        let out = self.book.lock().apply(findings, now, &self.rule);
        for o in out {
            publish(&ctx.system, o, now);
        }
        Ok(())
    }
}

/// Publishes one decision on the bus, stamping `detected_at` from when its condition
/// began to hold.
pub(crate) fn publish(system: &crate::tree::System, o: Outgoing, now_ms: u64) {
    let mut draft = o.draft;
    if let (Some(since), None) = (o.since_ms, &draft.detected_at) {
        let ago = i64::try_from(now_ms.saturating_sub(since)).unwrap_or(0);
        let at = crate::time::now() - chrono::Duration::milliseconds(ago);
        draft.detected_at = Some(crate::time::rfc3339(at));
    }
    tracing::info!(
        trigger = %draft.trigger,
        component = %draft.component,
        failure_mode = %draft.failure_mode,
        event = o.level.topic().as_str(),
        "trigger fired"
    );
    let component = draft.component.clone();
    system.bus.emit(o.level.topic(), Some(&component), &draft);
}

#[async_trait]
impl<T: Trigger> Kernel for TriggerKernel<T> {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.trigger
            .start(ctx)
            .await
            .map_err(|e| KernelError::failed(e.to_string()))?;
        let patterns = self.trigger.subscriptions();
        if !patterns.is_empty() {
            let p: Vec<&str> = patterns.iter().map(String::as_str).collect();
            // Idempotent per name: a restarted trigger gets its old mailbox back.
            self.sub = Some(ctx.system.bus.subscribe(&ctx.name, &p));
            self.generation = rand::random();
            ctx.send_self(Request::new("pump", json!(self.generation)));
        }
        let watched = self.trigger.watch_patterns(ctx);
        if !watched.is_empty() {
            let (me, queued) = (ctx.clone(), self.check_queued.clone());
            // At most one check waits in the mailbox: a burst of writes is one check.
            self.watch = FileWatch::start(&ctx.name, &watched, move || {
                if !queued.swap(true, Ordering::AcqRel) {
                    me.send_self(Request::new("check", Value::Null));
                }
            });
        }
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "pump" => {
                // A pump message from an earlier incarnation is dropped, so exactly one
                // pump loop runs.
                if req.args.as_u64() != Some(self.generation) {
                    return Ok(Value::Null);
                }
                if let Some(sub) = &self.sub {
                    if let Ok(Some(first)) = tokio::time::timeout(PUMP_WAIT, sub.recv()).await {
                        self.trigger.on_event(&first, ctx);
                        self.events += 1;
                        for _ in 1..PUMP_BATCH {
                            let Some(e) = sub.try_recv() else { break };
                            self.trigger.on_event(&e, ctx);
                            self.events += 1;
                        }
                    }
                }
                ctx.send_self(req);
                Ok(Value::Null)
            }
            "check" => {
                self.check_queued.store(false, Ordering::Release);
                self.file_checks += 1;
                self.check(ctx).await?;
                Ok(Value::Null)
            }
            "stats" => Ok(self.stats()),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other:?}; a trigger takes \"stats\" and \"check\""),
            }),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.check(ctx).await
    }

    fn stats(&self) -> Value {
        let mut s = self.book.lock().stats();
        if let Value::Object(m) = &mut s {
            m.insert("events".to_owned(), json!(self.events));
            if let Some(w) = &self.watch {
                m.insert("watched_dirs".to_owned(), json!(w.dirs.len()));
                m.insert("file_checks".to_owned(), json!(self.file_checks));
            }
            m.insert(
                "interval_ms".to_owned(),
                json!(self.rule.interval.as_millis() as u64),
            );
            let own = self.trigger.stats();
            if !own.is_null() {
                m.insert("trigger".to_owned(), own);
            }
        }
        s
    }
}
