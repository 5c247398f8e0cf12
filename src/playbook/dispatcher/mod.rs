//! The dispatcher: turns an incident event into a remediation. It opens the incident
//! (a repeat only counts), chooses the playbook, applies the rate limit, cooldown and
//! concurrency bound, and runs the playbook on its own task ([`remediate`]), which
//! verifies recovery before it closes the incident (resolved only when verified,
//! else failed and escalated, with MTTR to the verified recovery) and adjusts trust.
//! A draft marked informational (nothing Grace runs can act on it) is reported, not
//! remediated.
//!
//! Its state (run history, counters, the concurrency semaphore) lives in
//! [`Dispatcher`], outside the `self_healing` kernel, so a restart of that kernel
//! loses nothing and runs in progress carry on.

mod close;
mod remediate;
mod resume;

use std::sync::Arc;

use parking_lot::RwLock;

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::action::ActionRegistry;
use super::executor::Run;
use super::harm::DisruptionBudget;
use super::lifecycle;
use super::limit::{Admission, Limiter, Limits};
use super::load::PlaybookSet;
use super::stats::{Count, DispatcherStats};
use crate::bus::Event;
use crate::incident::{IncidentDraft, Opened};
use crate::tree::System;
use crate::trust::Change;

/// What the dispatcher did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatched {
    /// A playbook run was started (or queued for a slot) for a new incident.
    Started {
        /// The incident.
        incident_id: String,
        /// The playbook.
        playbook: String,
    },
    /// The incident is handed to a human at once: no playbook, approval required,
    /// rate limited or cooling down.
    Escalating {
        /// The incident.
        incident_id: String,
        /// Why.
        reason: String,
    },
    /// The event repeated an open incident; counted only.
    Repeat {
        /// The open incident.
        incident_id: String,
    },
    /// The draft was informational: nothing Grace runs can act on it, so it was
    /// reported (log and info alert), not opened as an incident.
    Informational {
        /// Why nothing can act.
        reason: String,
    },
    /// The event was not an incident draft.
    Ignored(String),
}

/// The shared state of the playbook dispatcher.
pub struct Dispatcher {
    playbooks: RwLock<Arc<PlaybookSet>>,
    actions: Arc<ActionRegistry>,
    limiter: Limiter,
    permits: Arc<Semaphore>,
    stats: Arc<DispatcherStats>,
    budget: Arc<DisruptionBudget>,
}

impl Dispatcher {
    /// A dispatcher over `playbooks` and `actions`, running at most `max_concurrent`
    /// playbooks at once.
    pub fn new(
        playbooks: PlaybookSet,
        actions: ActionRegistry,
        max_concurrent: usize,
    ) -> Arc<Dispatcher> {
        Dispatcher::with_budget(playbooks, actions, max_concurrent, 1)
    }

    /// [`Dispatcher::new`] with a disruption budget of `budget` components.
    pub fn with_budget(
        playbooks: PlaybookSet,
        actions: ActionRegistry,
        max_concurrent: usize,
        budget: usize,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            playbooks: RwLock::new(Arc::new(playbooks)),
            actions: Arc::new(actions),
            limiter: Limiter::default(),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            stats: Arc::new(DispatcherStats::default()),
            budget: Arc::new(DisruptionBudget::new(budget)),
        })
    }

    /// The dispatcher of a serve: the playbooks `config` asks for (defaults, then the
    /// directory beside `config_file`), checked against `actions`, with
    /// `[playbooks] max_concurrent`.
    pub fn from_config(
        config: &crate::config::Config,
        config_file: Option<&std::path::Path>,
        actions: ActionRegistry,
    ) -> Result<Arc<Dispatcher>, crate::config::ConfigError> {
        let set = super::load::load_configured(&config.playbooks, config_file, &actions)?;
        Ok(Dispatcher::with_budget(
            set,
            actions,
            config.playbooks.max_concurrent,
            config.playbooks.disruption_budget,
        ))
    }

    /// The counters (shared: the dashboard keeps the `Arc`).
    pub fn stats(&self) -> Arc<DispatcherStats> {
        self.stats.clone()
    }

    /// The playbooks in use.
    pub fn playbooks(&self) -> Arc<PlaybookSet> {
        self.playbooks.read().clone()
    }

    /// Replaces the playbooks (runs in progress keep theirs).
    pub fn set_playbooks(&self, set: PlaybookSet) {
        *self.playbooks.write() = Arc::new(set);
    }

    /// Handles one `event.incident`, `event.emergency` or `event.early_warning`.
    /// Returns at once: the run goes on its own task.
    pub fn dispatch(self: &Arc<Self>, system: &Arc<System>, event: &Event) -> Dispatched {
        let draft: IncidentDraft = match serde_json::from_value(event.payload.clone()) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(topic = %event.topic, error = %e, "event payload is not an incident draft; ignored");
                return Dispatched::Ignored(e.to_string());
            }
        };
        self.stats.bump(Count::Received);
        if let Some(reason) = informational(&draft) {
            self.stats.bump(Count::Informational);
            close::report_informational(system, &draft, &reason);
            return Dispatched::Informational { reason };
        }
        let inc = match lifecycle::open(system, &draft) {
            Opened::Repeat {
                incident_id,
                occurrences,
            } => {
                self.stats.bump(Count::Repeat);
                let why = format!("incident {incident_id} repeated ({occurrences} times)");
                lifecycle::trust(system, &draft.component, Change::RepeatedIncident, &why);
                return Dispatched::Repeat { incident_id };
            }
            Opened::New(inc) => Arc::new(inc),
        };
        if draft.failure_mode == crate::trigger::flap::FLAPPING {
            // Remediating a condition that comes and goes would loop: a human decides.
            let reason = "the condition is flapping; remediation is suppressed until it settles";
            return self.escalate_now(system, inc, None, reason.to_owned());
        }
        let id = inc.incident_id.clone();
        let playbook = match self.playbooks().select(&draft, event.topic) {
            Ok(p) => p,
            Err(reason) => {
                self.stats.bump(Count::Unmatched);
                return self.escalate_now(system, inc, None, reason);
            }
        };
        if playbook.requires_approval {
            let reason = format!("playbook {} requires approval", playbook.name);
            return self.escalate_now(system, inc, Some(&playbook), reason);
        }
        let limits = Limits::new(
            playbook.rate_limit.map(|r| (r.max, r.window.0)),
            playbook.cooldown.map(|c| c.0),
        );
        let now = crate::time::mono_ms();
        match self
            .limiter
            .try_start(&playbook.name, &inc.component, now, limits)
        {
            Admission::Run => {}
            refused => {
                self.stats.rate_limited(&playbook.name);
                if let Admission::CoolingDown { .. } = refused {
                    // The same component needs the same playbook again before its
                    // cooldown is over: the last remediation did not hold. That is a
                    // repeated incident, and costs trust like a repeat while open.
                    let why = format!(
                        "{} came back on {} while playbook {} cools down",
                        draft.trigger, inc.component, playbook.name
                    );
                    lifecycle::trust(system, &inc.component, Change::RepeatedIncident, &why);
                }
                let reason = match refused {
                    Admission::RateLimited { retry_after_ms } => format!(
                        "playbook {} is rate limited (next run possible in {} s)",
                        playbook.name,
                        retry_after_ms.div_ceil(1000)
                    ),
                    _ => format!(
                        "playbook {} is cooling down for {}",
                        playbook.name, inc.component
                    ),
                };
                return self.escalate_now(system, inc, Some(&playbook), reason);
            }
        }
        let dry_run = playbook.dry_run || system.config.playbooks.dry_run;
        let run = Run {
            system: system.clone(),
            actions: self.actions.clone(),
            playbook: playbook.clone(),
            incident: inc,
            dry_run,
            budget: self.budget.clone(),
        };
        self.stats.queued();
        let me = self.clone();
        let span = incident_span(&run.incident, Some(&playbook.name));
        tokio::spawn(async move { me.remediate(run).await }.instrument(span));
        Dispatched::Started {
            incident_id: id,
            playbook: playbook.name.clone(),
        }
    }
}

/// `incident{incident, component, playbook}`: entered around all the work on one
/// incident, so every record of it names the incident.
pub(super) fn incident_span(
    inc: &crate::incident::Incident,
    playbook: Option<&str>,
) -> tracing::Span {
    tracing::info_span!(
        "incident",
        incident = %inc.incident_id,
        component = %inc.component,
        playbook = playbook.unwrap_or("-"),
    )
}

/// Why a draft is informational (its details say `"informational": true`), if it is.
fn informational(draft: &IncidentDraft) -> Option<String> {
    let d = &draft.details;
    (d.get("informational").and_then(serde_json::Value::as_bool) == Some(true)).then(|| {
        d.get("reason")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("nothing Grace runs can act on this condition")
            .to_owned()
    })
}
