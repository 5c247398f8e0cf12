//! `scheduled`: a health check that falls due every `every`, or at the minutes of a
//! cron expression (local time) → `proactive_kernel_health_check`, published as an
//! early warning that is not a fault.

use async_trait::async_trait;
use chrono::{DateTime, Local, TimeZone};
use serde_json::{json, Value};

use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::time::mono_ms;
use crate::trigger::config::ScheduledConfig;
use crate::trigger::cron::Cron;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

#[derive(Debug, Clone, Copy)]
enum Due {
    /// Monotonic ms.
    At(u64),
    /// Wall clock, for cron.
    Wall(DateTime<Local>),
}

/// The next local time a cron expression matches after `after`.
pub fn next_local(cron: &Cron, after: DateTime<Local>) -> Option<DateTime<Local>> {
    let mut t = after.naive_local();
    for _ in 0..8 {
        let n = cron.next_after(&t)?;
        // A minute skipped by a daylight-saving jump does not exist: take the next one.
        match Local.from_local_datetime(&n).earliest() {
            Some(at) => return Some(at),
            None => t = n,
        }
    }
    None
}

/// `scheduled`: publishes one health check each time it falls due.
pub struct Scheduled {
    cfg: ScheduledConfig,
    cron: Option<Cron>,
    due: Option<Due>,
    runs: u64,
}

impl Scheduled {
    /// The trigger with its settings.
    pub fn new(cfg: ScheduledConfig) -> Scheduled {
        Scheduled {
            cfg,
            cron: None,
            due: None,
            runs: 0,
        }
    }

    fn plan(&self) -> Option<Due> {
        match &self.cron {
            Some(c) => next_local(c, Local::now()).map(Due::Wall),
            None => {
                let every = u64::try_from(self.cfg.every.as_millis()).unwrap_or(u64::MAX);
                Some(Due::At(mono_ms().saturating_add(every.max(1))))
            }
        }
    }
}

#[async_trait]
impl Trigger for Scheduled {
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), TriggerError> {
        if let Some(expr) = &self.cfg.cron {
            self.cron = Some(
                expr.parse()
                    .map_err(|e| TriggerError::config("scheduled", "cron", e))?,
            );
        }
        self.due = self.plan();
        Ok(())
    }

    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let due = match self.due {
            Some(Due::At(t)) => mono_ms() >= t,
            Some(Due::Wall(t)) => Local::now() >= t,
            None => false,
        };
        if !due {
            return Ok(Vec::new());
        }
        self.due = self.plan();
        self.runs += 1;
        let schedule = self
            .cfg
            .cron
            .clone()
            .unwrap_or_else(|| format!("every {}", humantime::format_duration(self.cfg.every)));
        Ok(vec![Finding::Once(
            Alert::new(
                Level::EarlyWarning,
                "scheduled",
                &self.cfg.component,
                "health_check",
                Severity::Low,
                Some(self.cfg.playbook_or("proactive_kernel_health_check")),
                format!("scheduled health check ({schedule})"),
            )
            .details(json!({ "schedule": schedule, "run": self.runs })),
        )])
    }

    fn stats(&self) -> Value {
        let next = match self.due {
            Some(Due::Wall(t)) => Some(crate::time::rfc3339(t.with_timezone(&chrono::Utc))),
            Some(Due::At(t)) => Some(format!("in {} ms", t.saturating_sub(mono_ms()))),
            None => None,
        };
        json!({ "runs": self.runs, "next": next })
    }
}
