//! The `self_healing` kernel: drains the dispatcher's bus subscription and hands each
//! incident event to the [`Dispatcher`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::dispatcher::{Dispatched, Dispatcher};
use crate::bus::{Event, Subscription, Topic};
use crate::kernel::{Health, Kernel, KernelContext, KernelError, KernelFactory, Request};

/// The subscriber name of the dispatcher on the bus.
pub const SUBSCRIBER: &str = "self_healing";
/// The topics the dispatcher takes.
pub const TOPICS: [&str; 3] = ["event.incident", "event.emergency", "event.early_warning"];
/// How long one pump step waits for an event before yielding to other messages.
const PUMP_WAIT: Duration = Duration::from_millis(50);
/// Events handled per pump step at most.
const PUMP_BATCH: usize = 256;

/// The `self_healing` system kernel. It keeps only its subscription handle and a
/// generation number; everything else lives in the shared [`Dispatcher`], and the bus
/// keeps its mailbox across restarts.
pub struct SelfHealingKernel {
    dispatcher: Arc<Dispatcher>,
    sub: Option<Subscription>,
    generation: u64,
}

impl SelfHealingKernel {
    /// A kernel value over `dispatcher`.
    pub fn new(dispatcher: Arc<Dispatcher>) -> SelfHealingKernel {
        SelfHealingKernel {
            dispatcher,
            sub: None,
            generation: 0,
        }
    }

    /// A factory for the kernel's spec: every (re)start gets a fresh value over the
    /// same dispatcher.
    pub fn factory(dispatcher: Arc<Dispatcher>) -> KernelFactory {
        Arc::new(move || Box::new(SelfHealingKernel::new(dispatcher.clone())))
    }

    fn handle_event(&self, ctx: &KernelContext, e: &Event) -> Dispatched {
        let d = self.dispatcher.dispatch(&ctx.system, e);
        tracing::debug!(topic = %e.topic, outcome = ?d, "incident event dispatched");
        d
    }
}

fn outcome_json(d: &Dispatched) -> Value {
    match d {
        Dispatched::Started {
            incident_id,
            playbook,
        } => json!({ "outcome": "started", "incident_id": incident_id, "playbook": playbook }),
        Dispatched::Escalating {
            incident_id,
            reason,
        } => json!({ "outcome": "escalating", "incident_id": incident_id, "reason": reason }),
        Dispatched::Repeat { incident_id } => {
            json!({ "outcome": "repeat", "incident_id": incident_id })
        }
        Dispatched::Informational { reason } => {
            json!({ "outcome": "informational", "reason": reason })
        }
        Dispatched::Ignored(why) => json!({ "outcome": "ignored", "reason": why }),
    }
}

#[async_trait]
impl Kernel for SelfHealingKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.sub = Some(ctx.system.bus.subscribe(SUBSCRIBER, &TOPICS));
        self.generation = rand::random();
        ctx.send_self(Request::new("pump", json!(self.generation)));
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "pump" => {
                // A pump message of an earlier incarnation is dropped, so exactly one
                // pump loop runs.
                if req.args.as_u64() != Some(self.generation) {
                    return Ok(Value::Null);
                }
                if let Some(sub) = self.sub.clone() {
                    if let Ok(Some(first)) = tokio::time::timeout(PUMP_WAIT, sub.recv()).await {
                        self.handle_event(ctx, &first);
                        for _ in 1..PUMP_BATCH {
                            match sub.try_recv() {
                                Some(e) => {
                                    self.handle_event(ctx, &e);
                                }
                                None => break,
                            }
                        }
                    }
                }
                ctx.send_self(req);
                Ok(Value::Null)
            }
            "incident" => {
                // A draft sent directly (API, tests): handled like `event.incident`.
                let e = Event::new(Topic::EventIncident, None, req.args);
                Ok(outcome_json(&self.handle_event(ctx, &e)))
            }
            "stats" => Ok(self.stats()),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!(
                    "unknown op {other:?}; self_healing takes \"incident\" and \"stats\""
                ),
            }),
        }
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        let s = self.dispatcher.stats().snapshot();
        if s.queued > 0 {
            Health::Degraded {
                reason: format!(
                    "{} playbook runs wait for a slot ({} running); raise [playbooks] max_concurrent if this lasts",
                    s.queued, s.running
                ),
            }
        } else {
            Health::Healthy
        }
    }

    fn stats(&self) -> Value {
        serde_json::to_value(self.dispatcher.stats().snapshot()).unwrap_or(Value::Null)
    }
}
