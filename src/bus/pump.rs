//! The `message_bus` kernel: moves events from the shared queue to subscribers.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::kernel::{Kernel, KernelContext, KernelError, Request};

/// How long one pump step waits for an event before yielding to other messages.
const PUMP_WAIT: Duration = Duration::from_millis(50);
/// Events moved per pump step at most.
const PUMP_BATCH: usize = 1024;

/// The kernel that pumps the bus. It keeps no state of its own beyond a generation
/// number: the queue and the subscriptions live in [`super::Bus`], so a restart of this
/// kernel loses nothing.
#[derive(Debug, Default)]
pub struct MessageBusKernel {
    generation: u64,
    moved: u64,
}

#[async_trait]
impl Kernel for MessageBusKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.generation = rand::random();
        ctx.send_self(Request::new("pump", json!(self.generation)));
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "pump" => {
                // A pump message from an earlier incarnation (restart in place) is dropped,
                // so exactly one pump loop runs.
                if req.args.as_u64() != Some(self.generation) {
                    return Ok(Value::Null);
                }
                self.moved += ctx.system.bus.pump(PUMP_BATCH, PUMP_WAIT).await as u64;
                ctx.send_self(req);
                Ok(Value::Null)
            }
            "stats" => Ok(serde_json::to_value(ctx.system.bus.stats()).unwrap_or(Value::Null)),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other:?}; message_bus takes \"stats\""),
            }),
        }
    }

    fn stats(&self) -> Value {
        json!({ "moved": self.moved })
    }
}
