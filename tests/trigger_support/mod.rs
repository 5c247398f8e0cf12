//! Shared helpers of the `trigger_*` tests: a real System on a temporary state
//! directory, trigger kernels run as real actors and ticked at their heartbeat
//! interval, and a subscriber that receives what the triggers publish.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use grace::bus::{Event, Subscription, Topic};
use grace::config::Config;
use grace::incident::IncidentDraft;
use grace::kernel::{spawn_kernel, KernelMsg, KernelSpec, KernelStatus};
use grace::state::StatePaths;
use grace::supervisor::SupervisorMsg;
use grace::tree::System;
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// The parent the kernels are linked to. It only holds them: the tests are about what
/// the triggers publish, not about restarts.
struct Parent;

impl Actor for Parent {
    type Msg = SupervisorMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        _evt: ractor::SupervisionEvent,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A running System with trigger kernels and a subscriber to `event.*`.
pub struct Harness {
    pub system: Arc<System>,
    pub dir: tempfile::TempDir,
    parent: ActorRef<SupervisorMsg>,
    events: Subscription,
    tickers: Vec<tokio::task::JoinHandle<()>>,
    specs: std::collections::HashMap<String, (KernelSpec, Arc<KernelStatus>)>,
}

impl Harness {
    /// A System over a fresh state directory, with `config`.
    pub async fn new(config: Config) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let system =
            System::open(Arc::new(config), StatePaths::new(dir.path())).expect("open system");
        let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("parent");
        let events = system.bus.subscribe("test", &["event.*"]);
        Harness {
            system,
            dir,
            parent,
            events,
            tickers: Vec::new(),
            specs: Default::default(),
        }
    }

    /// Registers a kernel's status as the tree does, without running it (a kernel
    /// whose heartbeat the test controls).
    pub fn register(&self, spec: &KernelSpec) -> Arc<KernelStatus> {
        let status = Arc::new(KernelStatus::new(spec));
        self.system
            .registry
            .register(status.clone(), self.parent.clone());
        status.mark_started();
        status
    }

    /// Starts a kernel as a real actor, registered, and ticked at its heartbeat
    /// interval.
    pub async fn start(&mut self, spec: KernelSpec) -> Arc<KernelStatus> {
        let status = Arc::new(KernelStatus::new(&spec));
        self.system
            .registry
            .register(status.clone(), self.parent.clone());
        self.specs
            .insert(spec.name.clone(), (spec.clone(), status.clone()));
        self.spawn(&spec, &status).await;
        status
    }

    async fn spawn(&mut self, spec: &KernelSpec, status: &Arc<KernelStatus>) {
        let actor = spawn_kernel(
            spec,
            status.clone(),
            self.system.clone(),
            self.parent.clone(),
            false,
        )
        .await
        .expect("kernel starts");
        self.system
            .registry
            .set_actor(&spec.name, Some(actor.clone()));
        let every = spec.heartbeat_interval;
        self.tickers.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.tick().await;
            loop {
                t.tick().await;
                if actor.send_message(KernelMsg::Tick).is_err() {
                    break;
                }
            }
        }));
    }

    /// Kills a kernel's actor, as a crash would.
    pub async fn kill(&mut self, name: &str) {
        let entry = self.system.registry.get(name).expect("registered");
        let actor = entry.actor().expect("running");
        self.system.registry.set_actor(name, None);
        actor
            .kill_and_wait(Some(Duration::from_secs(5)))
            .await
            .expect("killed");
    }

    /// Starts a killed kernel again from its spec, as its supervisor would.
    pub async fn respawn(&mut self, name: &str) {
        let (spec, status) = self.specs.get(name).cloned().expect("started before");
        status.record_restart("test");
        self.spawn(&spec, &status).await;
    }

    /// Starts every kernel of the specs.
    pub async fn start_all(&mut self, specs: Vec<KernelSpec>) {
        for s in specs {
            self.start(s).await;
        }
    }

    /// Moves published events to subscribers and returns the next one for the test, if
    /// one comes within `within`.
    pub async fn next(&self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(e) = self.events.try_recv() {
                return Some(e);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            self.system
                .bus
                .pump(1024, (deadline - now).min(Duration::from_millis(20)))
                .await;
        }
    }

    /// The first event matching `pred` within `within`; others are skipped.
    pub async fn wait_for(
        &self,
        within: Duration,
        pred: impl Fn(&Event, &IncidentDraft) -> bool,
    ) -> Option<(Event, IncidentDraft)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await?;
            let d = draft(&e);
            if pred(&e, &d) {
                return Some((e, d));
            }
        }
    }

    /// Every event published during `span`.
    pub async fn collect(&self, span: Duration) -> Vec<(Event, IncidentDraft)> {
        let deadline = tokio::time::Instant::now() + span;
        let mut v = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return v;
            }
            if let Some(e) = self.next(left).await {
                let d = draft(&e);
                v.push((e, d));
            }
        }
    }

    /// Publishes an event as another part of the system would.
    pub fn emit(&self, topic: Topic, component: &str, payload: serde_json::Value) {
        assert!(self.system.bus.emit(topic, Some(component), payload));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for t in &self.tickers {
            t.abort();
        }
        self.parent.stop(None);
    }
}

/// The draft an `event.*` carries.
pub fn draft(e: &Event) -> IncidentDraft {
    serde_json::from_value(e.payload.clone())
        .unwrap_or_else(|err| panic!("{} payload is not a draft ({err}): {}", e.topic, e.payload))
}

/// Whether `e` is `topic` from `trigger`.
pub fn is(e: &Event, d: &IncidentDraft, topic: Topic, trigger: &str) -> bool {
    e.topic == topic && d.trigger == trigger
}

/// Settings with every built-in trigger disabled, to enable one at a time.
pub fn only() -> grace::trigger::TriggersConfig {
    let mut t = grace::trigger::TriggersConfig::default();
    t.heartbeat_failure.enabled = false;
    t.critical_heartbeat.enabled = false;
    t.api_timeout.enabled = false;
    t.kpi_threshold.enabled = false;
    t.latency_queue.enabled = false;
    t.resource_spike.enabled = false;
    t.trust_score.enabled = false;
    t.sandbox_failure.enabled = false;
    t.event_anomaly.enabled = false;
    t.config_drift.enabled = false;
    t.model_integrity.enabled = false;
    t.repeated_error.enabled = false;
    t.scheduled.enabled = false;
    t
}

/// The kernels of the built-in triggers enabled in `t`.
pub fn specs(h: &Harness, t: &grace::trigger::TriggersConfig) -> Vec<KernelSpec> {
    grace::trigger::builtin_specs(&h.system, t)
}

/// A kernel that does nothing; its status is what the tests look at.
pub struct Idle;

#[async_trait::async_trait]
impl grace::kernel::Kernel for Idle {
    async fn handle(
        &mut self,
        _req: grace::kernel::Request,
        _ctx: &grace::kernel::KernelContext,
    ) -> Result<serde_json::Value, grace::kernel::KernelError> {
        Ok(serde_json::Value::Null)
    }
}

/// The spec of an [`Idle`] kernel with a heartbeat `timeout` (interval: a fifth).
pub fn idle(name: &str, timeout: Duration) -> KernelSpec {
    KernelSpec::new(name, Arc::new(|| Box::new(Idle))).heartbeat(timeout / 5, timeout)
}

/// Beats `status` every `every` until the returned task is aborted.
pub fn keep_beating(status: Arc<KernelStatus>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        loop {
            t.tick().await;
            status.beat();
        }
    })
}
