//! The [`Trigger`] trait built-in and user triggers implement, and what a check finds.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::error::TriggerError;
use crate::bus::{Event, Topic};
use crate::incident::{IncidentDraft, Severity};
use crate::kernel::KernelContext;

/// Which event a finding is published as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `event.incident`: open an incident and remediate.
    Incident,
    /// `event.emergency`: several critical parts are down at once.
    Emergency,
    /// `event.early_warning`: a condition approaches its threshold.
    EarlyWarning,
}

impl Level {
    /// The bus topic.
    pub fn topic(self) -> Topic {
        match self {
            Level::Incident => Topic::EventIncident,
            Level::Emergency => Topic::EventEmergency,
            Level::EarlyWarning => Topic::EventEarlyWarning,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Incident => "incident",
            Level::Emergency => "emergency",
            Level::EarlyWarning => "early_warning",
        }
    }
}

/// A condition a trigger found, with the draft to publish when it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// How it is published.
    pub level: Level,
    /// What is published.
    pub draft: IncidentDraft,
    /// Its own `for` duration, overriding the trigger's (resource windows).
    pub hold_for: Option<Duration>,
}

impl Alert {
    /// An alert of `level` from `trigger` about `component`.
    pub fn new(
        level: Level,
        trigger: &str,
        component: &str,
        failure_mode: &str,
        severity: Severity,
        playbook: Option<&str>,
        summary: impl Into<String>,
    ) -> Alert {
        Alert {
            level,
            draft: IncidentDraft {
                trigger: trigger.to_owned(),
                component: component.to_owned(),
                failure_mode: failure_mode.to_owned(),
                severity,
                playbook: playbook.map(str::to_owned),
                summary: summary.into(),
                details: Value::Null,
                detected_at: None,
            },
            hold_for: None,
        }
    }

    /// Sets the evidence.
    pub fn details(mut self, details: Value) -> Alert {
        self.draft.details = details;
        self
    }

    /// Marks the alert informational: the condition is real, but nothing Grace runs can
    /// act on it (or it says nothing about the component's health). Severity becomes
    /// Low and the details get `"informational": true` and `reason`; the dispatcher
    /// records such an incident as closed (reason `informational`) instead of running a
    /// playbook.
    pub fn informational(mut self, reason: impl Into<String>) -> Alert {
        self.draft.severity = Severity::Low;
        let mut details = match std::mem::take(&mut self.draft.details) {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".to_owned(), other);
                m
            }
        };
        details.insert("informational".to_owned(), Value::Bool(true));
        details.insert("reason".to_owned(), Value::String(reason.into()));
        self.draft.details = Value::Object(details);
        self
    }

    /// Whether [`Alert::informational`] marked it.
    pub fn is_informational(&self) -> bool {
        is_informational(&self.draft)
    }

    /// Sets the condition's own `for` duration.
    pub fn hold_for(mut self, d: Duration) -> Alert {
        self.hold_for = Some(d);
        self
    }

    /// The identity of the condition: level, component and failure mode.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.level.as_str(),
            self.draft.component,
            self.draft.failure_mode
        )
    }
}

/// Whether a draft is informational (`"informational": true` in its details): a real
/// condition with nothing to remediate.
pub fn is_informational(draft: &IncidentDraft) -> bool {
    draft.details.get("informational").and_then(Value::as_bool) == Some(true)
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// The condition holds now. It goes through the rule (`for`, deduplication, flap
    /// detection); a condition not found at the next check has cleared.
    Holds(Alert),
    /// A one-off event, published at once without the rule (a scheduled check is due).
    Once(Alert),
}

/// A trigger: watches a signal and reports the conditions that hold.
///
/// The runtime ([`super::TriggerKernel`]) calls [`Trigger::check`] at every heartbeat
/// tick of the trigger's kernel and feeds each finding through the trigger's
/// [`super::Rule`]; it publishes what fires. Between checks it hands the trigger every
/// bus event matching [`Trigger::subscriptions`]. A trigger only reports: it never opens
/// incidents or runs playbooks.
#[async_trait]
pub trait Trigger: Send + 'static {
    /// Bus topic patterns to receive (`kernel.restart.*`); none by default.
    fn subscriptions(&self) -> Vec<String> {
        Vec::new()
    }

    /// Called once per (re)start of the trigger's kernel, before any check.
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), TriggerError> {
        Ok(())
    }

    /// One event from the subscription.
    fn on_event(&mut self, _event: &Event, _ctx: &KernelContext) {}

    /// Absolute glob patterns of files whose change runs a check at once (between the
    /// periodic ones); none by default. Asked once per (re)start, after
    /// [`Trigger::start`].
    fn watch_patterns(&self, _ctx: &KernelContext) -> Vec<String> {
        Vec::new()
    }

    /// One check: the conditions that hold now. An error fails the trigger's kernel,
    /// which its supervisor restarts.
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError>;

    /// Figures for the dashboard (JSON object).
    fn stats(&self) -> Value {
        Value::Null
    }
}
