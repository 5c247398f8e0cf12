//! `latency_queue`: worker pools whose backlog (from their `stats()`) stays above a
//! limit → `scale_workers`.

use std::collections::HashSet;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::incident::Severity;
use crate::kernel::{Control, KernelContext};
use crate::trigger::config::LatencyQueueConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError, KERNEL_PREFIX};

/// Stats calls in flight at once.
const CONCURRENCY: usize = 32;
/// Checks between two rediscoveries of which kernels are pools.
const REDISCOVER: u64 = 60;

/// `latency_queue`: reads `backlog` from the stats of the configured kernels (or of
/// every kernel that reports one).
pub struct LatencyQueue {
    cfg: LatencyQueueConfig,
    /// Kernels found not to report a backlog (auto-discovery only).
    not_pools: HashSet<String>,
    checks: u64,
}

impl LatencyQueue {
    /// The trigger with its settings.
    pub fn new(cfg: LatencyQueueConfig) -> LatencyQueue {
        LatencyQueue {
            cfg,
            not_pools: HashSet::new(),
            checks: 0,
        }
    }
}

/// The backlog a kernel's stats report, if any.
pub fn backlog(stats: &Value) -> Option<u64> {
    let b = stats.get("backlog")?;
    b.as_u64().or_else(|| b.as_f64().map(|f| f.max(0.0) as u64))
}

#[async_trait]
impl Trigger for LatencyQueue {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        self.checks += 1;
        if self.checks % REDISCOVER == 0 {
            self.not_pools.clear();
        }
        let explicit = !self.cfg.kernels.is_empty();
        let names: Vec<String> = if explicit {
            self.cfg.kernels.clone()
        } else {
            ctx.system
                .registry
                .statuses()
                .iter()
                .filter(|s| s.state().is_up() && !s.name.starts_with(KERNEL_PREFIX))
                .filter(|s| !self.not_pools.contains(&s.name))
                .map(|s| s.name.clone())
                .collect()
        };
        let timeout = self.cfg.stats_timeout;
        let system = ctx.system.clone();
        let own = ctx.name.to_string();
        let answers: Vec<(String, Option<Value>)> = futures::stream::iter(names)
            .filter(|n| futures::future::ready(*n != own))
            .map(|name| {
                let system = system.clone();
                async move {
                    let r = system
                        .registry
                        .control(&name, Control::Stats, timeout)
                        .await;
                    (name, r.ok())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for (name, stats) in answers {
            let Some(stats) = stats else { continue };
            let Some(b) = backlog(&stats) else {
                if !explicit {
                    self.not_pools.insert(name);
                }
                continue;
            };
            if b > self.cfg.backlog_limit {
                out.push(Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "latency_queue",
                        &name,
                        "queue_backlog",
                        Severity::Medium,
                        Some(self.cfg.playbook_or("scale_workers")),
                        format!("{name} backlog {b} is above {}", self.cfg.backlog_limit),
                    )
                    .details(json!({
                        "backlog": b,
                        "limit": self.cfg.backlog_limit,
                        "stats": stats,
                    })),
                ));
            }
        }
        Ok(out)
    }

    fn stats(&self) -> Value {
        json!({ "not_pools": self.not_pools.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_is_read_from_integers_and_floats() {
        assert_eq!(backlog(&json!({"backlog": 12})), Some(12));
        assert_eq!(backlog(&json!({"backlog": 3.7})), Some(3));
        assert_eq!(backlog(&json!({"workers": 2})), None);
        assert_eq!(backlog(&Value::Null), None);
    }
}
