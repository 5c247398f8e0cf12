//! Shutdown of 10,000 kernels whose `stop` hook takes 1 ms (a flush): a dynamic
//! supervisor stops them all at once (OTP's `simple_one_for_one`), a static one one
//! after another in reverse start order (OTP's order for the other strategies), which is
//! the baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use grace::kernel::{Kernel, KernelContext, KernelError, KernelFactory, KernelSpec, Request};
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use serde_json::Value;

pub const CHILDREN: usize = 10_000;
const STOP_HOOK: Duration = Duration::from_millis(1);

/// A kernel whose graceful stop takes [`STOP_HOOK`].
struct Flushing;

#[async_trait]
impl Kernel for Flushing {
    async fn handle(&mut self, _req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }

    async fn stop(&mut self, _ctx: &KernelContext) {
        tokio::time::sleep(STOP_HOOK).await;
    }
}

fn child(i: usize, factory: &KernelFactory) -> ChildSpec {
    ChildSpec::kernel(KernelSpec::new(format!("s{i}"), factory.clone()))
}

/// Seconds to shut down `CHILDREN` flushing kernels: (dynamic, sequential).
pub async fn shutdown_times() -> (f64, f64) {
    let factory: KernelFactory = Arc::new(|| Box::new(Flushing) as Box<dyn Kernel>);

    let (sys, _dir) = super::system();
    let dynamic = SupervisorHandle::start(
        SupervisorSpec::new("dynamic", Strategy::OneForOne).max_children(CHILDREN),
        sys.clone(),
    )
    .await
    .expect("start");
    futures::stream::iter(0..CHILDREN)
        .map(|i| {
            let (sup, spec) = (dynamic.clone(), child(i, &factory));
            async move { sup.start_child(spec).await }
        })
        .buffer_unordered(256)
        .for_each(|r| {
            r.expect("start_child");
            futures::future::ready(())
        })
        .await;
    let t0 = Instant::now();
    dynamic
        .shutdown(Duration::from_secs(600))
        .await
        .expect("dynamic shutdown");
    let concurrent = t0.elapsed().as_secs_f64();

    let (sys, _dir) = super::system();
    let spec = (0..CHILDREN).fold(
        SupervisorSpec::new("static", Strategy::OneForOne),
        |s, i| s.child(child(i, &factory)),
    );
    let sequential = SupervisorHandle::start(spec, sys).await.expect("start");
    let t0 = Instant::now();
    sequential
        .shutdown(Duration::from_secs(600))
        .await
        .expect("static shutdown");
    (concurrent, t0.elapsed().as_secs_f64())
}
