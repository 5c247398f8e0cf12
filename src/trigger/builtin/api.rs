//! `api_timeout` and `kpi_threshold`: the HTTP server's requests, read from
//! [`crate::trigger::ApiSignals`] (`system.api`).

use async_trait::async_trait;
use serde_json::json;

use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::config::{ApiTimeoutConfig, KpiThresholdConfig};
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// `api_timeout`: `min_timeouts` or more requests timed out within `window` →
/// `restart_service`.
pub struct ApiTimeout {
    cfg: ApiTimeoutConfig,
}

impl ApiTimeout {
    /// The trigger with its settings.
    pub fn new(cfg: ApiTimeoutConfig) -> ApiTimeout {
        ApiTimeout { cfg }
    }
}

#[async_trait]
impl Trigger for ApiTimeout {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let w = ctx.system.api.window(self.cfg.window);
        if w.timeouts < self.cfg.min_timeouts.max(1) {
            return Ok(Vec::new());
        }
        let secs = self.cfg.window.as_secs_f64();
        Ok(vec![Finding::Holds(
            Alert::new(
                Level::Incident,
                "api_timeout",
                &self.cfg.component,
                "api_timeout",
                Severity::High,
                Some(self.cfg.playbook_or("restart_service")),
                format!(
                    "{} of {} requests timed out in the last {secs:.0} s",
                    w.timeouts, w.requests
                ),
            )
            .details(json!({
                "timeouts": w.timeouts,
                "requests": w.requests,
                "window_s": secs,
                "min_timeouts": self.cfg.min_timeouts,
            })),
        )])
    }
}

/// `kpi_threshold`: request latency p95 over `window` above `p95_ms`, held for `for`
/// (default 60 s) → `performance_optimization`.
pub struct KpiThreshold {
    cfg: KpiThresholdConfig,
}

impl KpiThreshold {
    /// The trigger with its settings.
    pub fn new(cfg: KpiThresholdConfig) -> KpiThreshold {
        KpiThreshold { cfg }
    }
}

#[async_trait]
impl Trigger for KpiThreshold {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let w = ctx.system.api.window(self.cfg.window);
        let Some(p95) = w
            .p95_ms
            .filter(|_| w.samples >= self.cfg.min_samples.max(1))
        else {
            return Ok(Vec::new());
        };
        if p95 <= self.cfg.p95_ms {
            return Ok(Vec::new());
        }
        Ok(vec![Finding::Holds(
            Alert::new(
                Level::Incident,
                "kpi_threshold",
                &self.cfg.component,
                "latency_p95",
                Severity::Medium,
                Some(self.cfg.playbook_or("performance_optimization")),
                format!(
                    "request latency p95 {p95:.0} ms is above {:.0} ms",
                    self.cfg.p95_ms
                ),
            )
            .details(json!({
                "p95_ms": p95,
                "threshold_ms": self.cfg.p95_ms,
                "samples": w.samples,
                "requests": w.requests,
                "window_s": self.cfg.window.as_secs_f64(),
            })),
        )])
    }
}
