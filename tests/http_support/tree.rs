//! Kernels for the HTTP tests, under real supervisors.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::kernel::{Kernel, KernelContext, KernelError, KernelSpec, Request};
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use serde_json::{json, Value};

/// A kernel that answers `get` with how many requests it has handled, and panics on
/// `panic`.
#[derive(Default)]
pub struct Counter {
    n: u64,
}

#[async_trait]
impl Kernel for Counter {
    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "get" => {
                self.n += 1;
                Ok(json!(self.n))
            }
            // A crash with the given message: its supervisor restarts the kernel and the
            // message becomes the restart reason.
            "panic" => panic!("{}", req.args["message"].as_str().unwrap_or("panic op")),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other}"),
            }),
        }
    }
}

/// A spec of a [`Counter`] kernel.
pub fn counter(name: &str, critical: bool) -> KernelSpec {
    let spec = KernelSpec::new(name, Arc::new(|| Box::new(Counter::default())));
    if critical {
        spec.critical()
    } else {
        spec
    }
}

/// Starts a one_for_one supervisor named `name` over `specs` (a real supervisor, which
/// registers its kernels in `system`'s registry); returns once every kernel runs.
pub async fn supervise(
    system: &Arc<System>,
    name: &str,
    specs: Vec<KernelSpec>,
) -> SupervisorHandle {
    let mut spec =
        SupervisorSpec::new(name, Strategy::OneForOne).intensity(100, Duration::from_secs(1));
    for k in specs {
        spec = spec.child(ChildSpec::kernel(k));
    }
    SupervisorHandle::start(spec, system.clone())
        .await
        .expect("start supervisor")
}
