//! The `coding_agent` kernel: runs diagnostic tasks on request.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::evidence::DiagnoseRequest;
use super::task::{diagnose, TaskOptions};
use crate::kernel::{Kernel, KernelContext, KernelError, Request};

/// The `coding_agent` kernel. Requests:
///
/// - `diagnose` with `{component, incident_id?, error?, dependencies?}`: runs a
///   diagnostic task and answers the report (see [`super::DiagnosticReport`]). It takes
///   about a quarter of a second to sample resources, plus the time of the fixes it
///   applies and of the escalation (each bounded by `[diagnostics]` timeouts), so call it
///   with a timeout to match.
/// - `stats`: diagnoses run, escalations, the last report's path.
///
/// It keeps no state that matters across restarts: reports are files.
#[derive(Debug, Default)]
pub struct CodingAgentKernel {
    diagnosed: u64,
    escalated: u64,
    last_report: Option<String>,
}

#[async_trait]
impl Kernel for CodingAgentKernel {
    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "diagnose" => {
                let dr: DiagnoseRequest =
                    serde_json::from_value(req.args).map_err(|e| KernelError::BadRequest {
                        kernel: ctx.name.to_string(),
                        reason: format!(
                            "diagnose takes {{component, incident_id?, error?, dependencies?}}: {e}"
                        ),
                    })?;
                if dr.component.is_empty() {
                    return Err(KernelError::BadRequest {
                        kernel: ctx.name.to_string(),
                        reason: "diagnose: component is empty".to_owned(),
                    });
                }
                let opts = TaskOptions {
                    self_name: Some(ctx.name.to_string()),
                    heartbeat: Some(ctx.status.clone()),
                };
                let report = diagnose(&ctx.system, dr, opts)
                    .await
                    .map_err(|e| KernelError::failed(e.to_string()))?;
                self.diagnosed += 1;
                if report.escalation.is_some() {
                    self.escalated += 1;
                }
                self.last_report = Some(report.path.display().to_string());
                serde_json::to_value(&report).map_err(|e| KernelError::failed(e.to_string()))
            }
            "stats" => Ok(self.stats()),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other:?}; coding_agent takes \"diagnose\", \"stats\""),
            }),
        }
    }

    fn stats(&self) -> Value {
        json!({
            "diagnosed": self.diagnosed,
            "escalated": self.escalated,
            "last_report": self.last_report,
        })
    }
}
