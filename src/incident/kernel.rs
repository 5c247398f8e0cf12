//! The `incident_log` system kernel: keeps the incident journal and the audit log
//! durable and proves they stay writable.
//!
//! The writers themselves live in [`crate::tree::System`] (`incidents`, `audit`), outside
//! this actor, so that killing it loses no record: appends go on while it restarts. What
//! the kernel adds is the heartbeat of the durable path: at every tick it syncs both
//! files (the group-commit point) and fails, to be restarted and reported, if the disk
//! refuses.

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::kernel::{Health, Kernel, KernelContext, KernelError, Request};

/// The `incident_log` kernel.
#[derive(Debug, Default)]
pub struct IncidentLogKernel {
    syncs: u64,
    last_error: Option<String>,
}

impl IncidentLogKernel {
    fn sync(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        let r = ctx
            .system
            .audit
            .sync()
            .map_err(|e| e.to_string())
            .and_then(|()| ctx.system.incidents.sync().map_err(|e| e.to_string()));
        match r {
            Ok(()) => {
                self.syncs += 1;
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                self.last_error = Some(e.clone());
                Err(KernelError::failed(format!("durable sync failed: {e}")))
            }
        }
    }
}

#[async_trait]
impl Kernel for IncidentLogKernel {
    async fn tick(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.sync(ctx)
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "sync" => {
                self.sync(ctx)?;
                Ok(json!({ "synced": true }))
            }
            "stats" => Ok(self.stats_of(ctx)),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other:?}; incident_log takes \"sync\" or \"stats\""),
            }),
        }
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        match &self.last_error {
            None => Health::Healthy,
            Some(e) => Health::Degraded { reason: e.clone() },
        }
    }

    fn stats(&self) -> Value {
        json!({ "syncs": self.syncs, "last_error": self.last_error })
    }
}

impl IncidentLogKernel {
    fn stats_of(&self, ctx: &KernelContext) -> Value {
        json!({
            "syncs": self.syncs,
            "audit_records": ctx.system.audit.len(),
            "open_incidents": ctx.system.incidents.open_incidents().len(),
            "last_error": self.last_error,
        })
    }
}
