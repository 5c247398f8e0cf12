//! The `incident_log` system kernel: keeps the incident journal and the audit log
//! durable and proves they stay writable.
//!
//! The writers themselves live in [`crate::tree::System`] (`incidents`, `audit`), outside
//! this actor, so that killing it loses no record: appends go on while it restarts. What
//! the kernel adds is the heartbeat of the durable path: at every tick it syncs both
//! files (the group-commit point) and fails, to be restarted and reported, if the disk
//! refuses. It reports degraded while the store's last change could not be recorded
//! ([`crate::incident::IncidentStore::durability_error`]), and at each tick imports the
//! watchdog's new repairs of serve as incidents (one `stat` when there are none), and
//! hourly moves closed incidents past retention to their segments.

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::kernel::{Health, Kernel, KernelContext, KernelError, Request};

/// The `incident_log` kernel.
#[derive(Debug, Default)]
pub struct IncidentLogKernel {
    syncs: u64,
    last_error: Option<String>,
    import_error: Option<String>,
}

impl IncidentLogKernel {
    /// Imports the watchdog's new repair records; logs a failure once until it changes.
    fn import(&mut self, ctx: &KernelContext) {
        let r = crate::incident::import_watchdog_repairs(&ctx.system.incidents, &ctx.system.paths);
        match r {
            Ok(_) => self.import_error = None,
            Err(e) => {
                let e = e.to_string();
                if self.import_error.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "cannot record the watchdog's repairs of serve as incidents");
                }
                self.import_error = Some(e);
            }
        }
    }

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
    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        self.import(ctx);
        ctx.system.incidents.maintain();
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

    async fn health(&mut self, ctx: &KernelContext) -> Health {
        match (&self.last_error, ctx.system.incidents.durability_error()) {
            (Some(e), _) => Health::Degraded { reason: e.clone() },
            (None, Some(e)) => Health::Degraded {
                reason: format!("last incident change not recorded: {e}"),
            },
            (None, None) => Health::Healthy,
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
            "orphans": ctx.system.incidents.orphans().len(),
            "durability_error": ctx.system.incidents.durability_error(),
            "import_error": self.import_error,
            "last_error": self.last_error,
        })
    }
}
