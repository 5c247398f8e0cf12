//! A kernel for the hang-detection tests: whether it ticks is its choice; requests hang,
//! beat through long work, or beat for a while and then hang.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::Subscription;
use grace::kernel::{Kernel, KernelContext, KernelError, KernelSpec, Request};
use grace::tree::{HeartbeatMissed, System};
use serde_json::Value;

/// What a [`Quiet`] kernel shares with its test.
#[derive(Default)]
pub struct Knobs {
    /// Ticks received.
    pub ticks: AtomicU64,
    /// While set, its ticks answer `Unresponsive`.
    pub unresponsive: AtomicBool,
}

/// The test kernel. Ops: `hang` (never returns), `work` (`{"ms", "every"}`: works `ms`
/// milliseconds, beating every `every`), `work_then_hang` (the same, then never
/// returns without beating again), `sleep` (`{"ms"}`).
pub struct Quiet {
    knobs: Arc<Knobs>,
    ticking: bool,
}

fn ms(req: &Request, key: &str) -> Duration {
    Duration::from_millis(req.args[key].as_u64().unwrap_or(100))
}

async fn work(req: &Request, ctx: &KernelContext) {
    let (total, every) = (ms(req, "ms"), ms(req, "every"));
    let until = tokio::time::Instant::now() + total;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(every).await;
        ctx.status.beat();
    }
}

#[async_trait]
impl Kernel for Quiet {
    fn ticks(&self) -> bool {
        self.ticking
    }

    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        self.knobs.ticks.fetch_add(1, Ordering::SeqCst);
        if self.knobs.unresponsive.load(Ordering::SeqCst) {
            return Err(KernelError::Unresponsive("probe failed".into()));
        }
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "hang" => futures::future::pending().await,
            "work" => work(&req, ctx).await,
            "work_then_hang" => {
                work(&req, ctx).await;
                futures::future::pending::<()>().await;
            }
            _ => tokio::time::sleep(ms(&req, "ms")).await,
        }
        Ok(Value::Null)
    }
}

/// The spec of a [`Quiet`] kernel with a heartbeat `timeout` (interval: a tenth).
pub fn quiet(name: &str, knobs: &Arc<Knobs>, ticking: bool, timeout: Duration) -> KernelSpec {
    let knobs = knobs.clone();
    KernelSpec::new(
        name,
        Arc::new(move || {
            Box::new(Quiet {
                knobs: knobs.clone(),
                ticking,
            }) as Box<dyn Kernel>
        }),
    )
    .heartbeat(timeout / 10, timeout)
}

/// Waits up to `within` (tokio time) for a `kernel.heartbeat.missed`; returns it with
/// how long it took.
pub async fn next_missed(
    system: &System,
    sub: &Subscription,
    within: Duration,
) -> Option<(Duration, HeartbeatMissed)> {
    let t0 = tokio::time::Instant::now();
    loop {
        system.bus.pump(1024, Duration::from_millis(1)).await;
        if let Some(e) = sub.try_recv() {
            let m = serde_json::from_value(e.payload).expect("payload");
            return Some((t0.elapsed(), m));
        }
        if t0.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
