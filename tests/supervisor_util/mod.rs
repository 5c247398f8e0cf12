//! Shared pieces of the supervisor tests: a small kernel that counts its starts and
//! records its stops, a `System` over a temporary directory, and polling helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::{Event, Subscription};
use grace::config::Config;
use grace::kernel::{
    Fault, Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, KernelState, Request,
};
use grace::state::StatePaths;
use grace::tree::System;
use ractor::ActorRef;
use serde_json::{json, Value};
use tokio::time::Instant;

/// What the test kernels of one test share: start counts, start times, the order of
/// stops, and switches.
#[derive(Clone, Default)]
pub struct Probe {
    starts: Arc<Mutex<Vec<(String, Instant)>>>,
    stops: Arc<Mutex<Vec<String>>>,
    fail_start: Arc<AtomicBool>,
    ignore_stop: Arc<Mutex<Vec<String>>>,
    handled: Arc<AtomicUsize>,
    spinning: Arc<AtomicBool>,
    /// Per kernel: how its next starts go (fail a number of them, take a while, decline).
    start_plan: Arc<Mutex<HashMap<String, StartPlan>>>,
}

/// How the next starts of one test kernel go.
#[derive(Clone, Debug, Default)]
pub struct StartPlan {
    /// This many of the next starts fail (`u32::MAX`: all of them).
    pub fail: u32,
    /// Each start first sleeps this long.
    pub delay: Duration,
    /// Each start declines (`KernelError::Ignore`).
    pub ignore: bool,
    /// Each start never finishes.
    pub hang: bool,
}

impl Probe {
    /// Starts of kernel `name` so far.
    pub fn starts(&self, name: &str) -> usize {
        self.starts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }

    /// When kernel `name` started, in order (tokio's clock, so paused time applies).
    pub fn start_times(&self, name: &str) -> Vec<Instant> {
        self.starts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    /// The kernels whose graceful `stop` hook ran, in order.
    pub fn stops(&self) -> Vec<String> {
        self.stops.lock().expect("lock").clone()
    }

    /// Makes every following start fail (or succeed again).
    pub fn fail_starts(&self, yes: bool) {
        self.fail_start.store(yes, Ordering::SeqCst);
    }

    /// Sets how the next starts of kernel `name` go.
    pub fn plan_starts(&self, name: &str, plan: StartPlan) {
        self.start_plan
            .lock()
            .expect("lock")
            .insert(name.to_owned(), plan);
    }

    /// What the next start of kernel `name` is to do (consuming one planned failure).
    fn next_start(&self, name: &str) -> StartPlan {
        let mut plans = self.start_plan.lock().expect("lock");
        let Some(p) = plans.get_mut(name) else {
            return StartPlan::default();
        };
        let now = p.clone();
        if p.fail != u32::MAX {
            p.fail = p.fail.saturating_sub(1);
        }
        now
    }

    /// Whether a kernel is spinning the CPU (op `spin`).
    pub fn spinning(&self) -> bool {
        self.spinning.load(Ordering::SeqCst)
    }

    /// Ends a spin early (the test is done with it).
    pub fn release_spin(&self) {
        self.spinning.store(false, Ordering::SeqCst);
    }

    /// Makes kernel `name`'s stop hook await forever.
    pub fn ignore_stop(&self, name: &str) {
        self.ignore_stop.lock().expect("lock").push(name.to_owned());
    }

    /// A task-isolated kernel spec named `name` reporting to this probe.
    pub fn kernel(&self, name: &str) -> KernelSpec {
        let probe = self.clone();
        let n = name.to_owned();
        KernelSpec::new(
            name,
            Arc::new(move || {
                Box::new(TestKernel {
                    name: n.clone(),
                    probe: probe.clone(),
                }) as Box<dyn Kernel>
            }),
        )
    }
}

/// A kernel that answers `ping` with its start count, fails on `fail`, ends normally on
/// `exit` and spins the CPU on `spin` (milliseconds); its starts follow the probe's
/// [`StartPlan`] for it.
pub struct TestKernel {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Kernel for TestKernel {
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        if self.probe.fail_start.load(Ordering::SeqCst) {
            return Err(KernelError::failed("start refused by the test"));
        }
        let plan = self.probe.next_start(&self.name);
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        if plan.hang {
            futures::future::pending::<()>().await;
        }
        if plan.fail > 0 {
            return Err(KernelError::failed("start failed as planned by the test"));
        }
        if plan.ignore {
            return Err(KernelError::Ignore);
        }
        self.probe
            .starts
            .lock()
            .expect("lock")
            .push((self.name.clone(), Instant::now()));
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        self.probe.handled.fetch_add(1, Ordering::Relaxed);
        match req.op.as_str() {
            "ping" => Ok(json!(self.probe.starts(&self.name))),
            "exit" => {
                // Ends by itself, normally (OTP: exit(normal)).
                ctx.myself.stop(Some("normal".to_owned()));
                Ok(Value::Null)
            }
            "fail" => Err(KernelError::failed("asked to fail")),
            "panic" => panic!("asked to panic"),
            "spin" => {
                // Spins without ever awaiting: neither a stop nor a kill gets in.
                let ms = req.args.as_u64().unwrap_or(0);
                self.probe.spinning.store(true, Ordering::SeqCst);
                let until = std::time::Instant::now() + Duration::from_millis(ms);
                while std::time::Instant::now() < until && self.probe.spinning() {
                    std::hint::spin_loop();
                }
                self.probe.spinning.store(false, Ordering::SeqCst);
                Ok(Value::Null)
            }
            _ => Ok(Value::Null),
        }
    }

    async fn stop(&mut self, _ctx: &KernelContext) {
        self.probe
            .stops
            .lock()
            .expect("lock")
            .push(self.name.clone());
        let ignore = self
            .probe
            .ignore_stop
            .lock()
            .expect("lock")
            .contains(&self.name);
        if ignore {
            futures::future::pending::<()>().await;
        }
    }
}

/// A `System` over a fresh temporary state directory (kept alive by the returned guard).
pub fn system() -> (Arc<System>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = System::open(Arc::new(Config::default()), StatePaths::new(dir.path()))
        .expect("open system");
    (sys, dir)
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; panics then.
pub async fn periodic_check(cond: impl Fn() -> bool, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cond(), "condition not met within {timeout:?}");
}

/// The current actor of kernel `name`.
pub fn actor(sys: &System, name: &str) -> Option<ActorRef<KernelMsg>> {
    sys.registry.get(name).and_then(|e| e.actor())
}

/// The state of kernel `name`.
pub fn state(sys: &System, name: &str) -> Option<KernelState> {
    sys.registry.get(name).map(|e| e.status.state())
}

/// Panics kernel `name` (chaos fault injection).
pub fn panic_kernel(sys: &System, name: &str) {
    sys.registry
        .inject(name, Fault::Panic)
        .expect("kernel is running");
}

/// Asks kernel `name` for its start count.
pub async fn ping(sys: &System, name: &str) -> Result<Value, grace::tree::TreeError> {
    sys.registry
        .call(
            name,
            Request::new("ping", Value::Null),
            Duration::from_secs(5),
        )
        .await
}

/// Moves pending bus events to subscribers and returns what `sub` received.
pub async fn drain(sys: &System, sub: &Subscription) -> Vec<Event> {
    while sys.bus.pump(1024, Duration::from_millis(1)).await > 0 {}
    let mut out = Vec::new();
    while let Some(e) = sub.try_recv() {
        out.push(e);
    }
    out
}
