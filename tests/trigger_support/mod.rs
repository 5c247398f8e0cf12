//! Shared helpers of the `trigger_*` tests: a real System on a temporary state
//! directory, the `triggers` supervisor and a `kernels` supervisor running real kernel
//! actors ticked at their heartbeat interval, and a subscriber that receives what the
//! triggers publish.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use grace::bus::{Event, Subscription, Topic};
use grace::config::Config;
use grace::incident::IncidentDraft;
use grace::kernel::{KernelMsg, KernelSpec, KernelStatus};
use grace::state::StatePaths;
use grace::supervisor::{ChildKind, ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use grace::trigger::{triggers_supervisor_with, TriggersConfig};

/// A running System with supervisors and a subscriber to `event.*`.
pub struct Harness {
    pub system: Arc<System>,
    pub dir: tempfile::TempDir,
    /// The user's kernels (and the supervisor of statuses registered by the tests).
    pub kernels: SupervisorHandle,
    /// The `triggers` supervisor, once started.
    pub triggers: Option<SupervisorHandle>,
    events: Subscription,
    tickers: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// A System over a fresh state directory, with `config`.
    pub async fn new(config: Config) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let system =
            System::open(Arc::new(config), StatePaths::new(dir.path())).expect("open system");
        let kernels = SupervisorHandle::start(
            SupervisorSpec::new("kernels", Strategy::OneForOne),
            system.clone(),
        )
        .await
        .expect("kernels supervisor");
        let events = system.bus.subscribe("test", &["event.*"]);
        Harness {
            system,
            dir,
            kernels,
            triggers: None,
            events,
            tickers: Vec::new(),
        }
    }

    /// Registers a kernel's status as the tree does, without running it (a kernel
    /// whose heartbeat and state the test controls).
    pub fn register(&self, spec: &KernelSpec) -> Arc<KernelStatus> {
        let status = Arc::new(KernelStatus::new(spec));
        // It stands for a kernel that ticks: its heartbeat age counts between messages.
        status.set_ticks(true);
        self.system
            .registry
            .register(status.clone(), self.kernels.actor().clone());
        status.mark_running();
        status
    }

    /// Starts a kernel under the `kernels` supervisor, ticked at its interval.
    pub async fn start_kernel(&mut self, spec: KernelSpec) {
        let (name, every) = (spec.name.clone(), spec.heartbeat_interval);
        self.kernels
            .start_child(ChildSpec::kernel(spec))
            .await
            .expect("kernel starts");
        self.tick(name, every);
    }

    /// Starts the `triggers` supervisor with the built-in triggers enabled in `t` and
    /// `extra` ones, each ticked at its check interval.
    pub async fn start_triggers_with(
        &mut self,
        t: &TriggersConfig,
        extra: impl IntoIterator<Item = KernelSpec>,
    ) {
        let spec = triggers_supervisor_with(&self.system, t, extra);
        for c in &spec.children {
            if let ChildKind::Kernel(k) = &c.kind {
                self.tick(k.name.clone(), k.heartbeat_interval);
            }
        }
        self.triggers = Some(
            SupervisorHandle::start(spec, self.system.clone())
                .await
                .expect("triggers start"),
        );
    }

    /// Starts the `triggers` supervisor with the built-in triggers enabled in `t`.
    pub async fn start_triggers(&mut self, t: &TriggersConfig) {
        self.start_triggers_with(t, Vec::new()).await;
    }

    /// Sends `Tick` to the kernel `name`, whichever actor runs it now, every `every`.
    fn tick(&mut self, name: String, every: Duration) {
        let system = self.system.clone();
        self.tickers.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.tick().await;
            loop {
                t.tick().await;
                let Some(e) = system.registry.get(&name) else {
                    continue;
                };
                if let Some(a) = e.actor() {
                    e.status.note_enqueued();
                    let _ = a.send_message(KernelMsg::Tick);
                }
            }
        }));
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
        if let Some(t) = &self.triggers {
            t.actor().stop(None);
        }
        self.kernels.actor().stop(None);
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
pub fn only() -> TriggersConfig {
    let mut t = TriggersConfig::default();
    t.enable_only(&[]);
    t
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
