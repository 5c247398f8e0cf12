//! `sandbox_failure`: crashes of kernels the user marked `sandbox = true` (untrusted
//! code), from `kernel.restart.*` → `quarantine_artifacts`. A crash of any other kernel,
//! process-isolated or not, is its supervisor's to repair.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{event_component, event_text, mentions_any};
use crate::bus::{Event, Topic};
use crate::incident::Severity;
use crate::kernel::{Isolation, KernelContext};
use crate::trigger::config::SandboxFailureConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

#[derive(Debug, Default)]
struct Crashes {
    count: u64,
    isolation: Isolation,
    last_reason: Option<String>,
    topics: Vec<&'static str>,
}

/// `sandbox_failure`: a restart initiated for, or a restart failed of, a kernel marked
/// `sandbox = true` is a crash; each check reports the kernels that crashed since the
/// previous check.
pub struct SandboxFailure {
    cfg: SandboxFailureConfig,
    crashes: BTreeMap<String, Crashes>,
    total: u64,
}

impl SandboxFailure {
    /// The trigger with its settings.
    pub fn new(cfg: SandboxFailureConfig) -> SandboxFailure {
        SandboxFailure {
            cfg,
            crashes: BTreeMap::new(),
            total: 0,
        }
    }

    fn ignored(&self, reason: &str) -> bool {
        mentions_any(reason, &self.cfg.ignore_reasons)
    }
}

#[async_trait]
impl Trigger for SandboxFailure {
    fn subscriptions(&self) -> Vec<String> {
        vec!["kernel.restart.*".to_owned()]
    }

    fn on_event(&mut self, event: &Event, ctx: &KernelContext) {
        if !matches!(
            event.topic,
            Topic::KernelRestartInitiated | Topic::KernelRestartFailed
        ) {
            return;
        }
        let Some(name) = event_component(event) else {
            return;
        };
        let Some(entry) = ctx.system.registry.get(&name) else {
            return;
        };
        if !entry.status.sandbox {
            return;
        }
        let isolation = entry.status.isolation;
        let reason = event_text(event).or_else(|| entry.status.last_reason());
        if reason.as_deref().is_some_and(|r| self.ignored(r)) {
            return;
        }
        let c = self.crashes.entry(name).or_default();
        c.count += 1;
        c.isolation = isolation;
        c.last_reason = reason;
        if !c.topics.contains(&event.topic.as_str()) {
            c.topics.push(event.topic.as_str());
        }
        self.total += 1;
    }

    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        Ok(std::mem::take(&mut self.crashes)
            .into_iter()
            .map(|(name, c)| {
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "sandbox_failure",
                        &name,
                        "sandbox_crash",
                        Severity::High,
                        Some(self.cfg.playbook_or("quarantine_artifacts")),
                        format!(
                            "sandboxed kernel {name} crashed: {}",
                            c.last_reason.as_deref().unwrap_or("no reason given")
                        ),
                    )
                    .details(json!({
                        "crashes": c.count,
                        "reason": c.last_reason,
                        "events": c.topics,
                        "isolation": c.isolation,
                        "sandbox": true,
                    })),
                )
            })
            .collect())
    }

    fn stats(&self) -> Value {
        json!({ "crashes": self.total })
    }
}
