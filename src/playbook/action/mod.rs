//! Playbook actions: the [`Action`] trait, what an action sees ([`ActionContext`]), its
//! arguments ([`Args`]), and the [`ActionRegistry`] of built-in and user actions.
//!
//! An action does what its name says against the running tree, through the shared
//! services of [`System`]: the registry of kernels, the bus, the state directory. It
//! returns JSON describing what it did (recorded in the incident's step) or an
//! [`ActionError`]. An action that finds nothing to do returns [`skipped`]; the step is
//! then recorded as `skipped`, which is not a failure.
//!
//! The built-in actions and their arguments (`kernel` defaults to the incident's
//! component; for `restart_kernel` and `verify_health`, `*` or the component `system`
//! means every kernel not stopped on purpose):
//!
//! | action | arguments | does |
//! | --- | --- | --- |
//! | `restart_kernel` | `kernel`, `when` (`always`, `unhealthy`, `down_or_named`) | restart through the supervisor; skipped if already restarted since detection and fresh |
//! | `stop_kernel` | `kernel` | stop through the supervisor (stays down) |
//! | `verify_health` | `kernel` | up, heartbeat fresh, health hook not unhealthy |
//! | `check_kernels` | `min`, `fraction` (default 0.75), `critical` | enough kernels running |
//! | `scale_workers` | `kernel`, `size` or `add` (2), `max` (64) | `Control::Scale` |
//! | `shed_load` / `restore_load` | `kernel` (default: every non-critical kernel) | `Control::ShedLoad` |
//! | `clear_caches` | `kernel` (default: every kernel) | `Control::ClearCaches` |
//! | `restart_service` | `reason` | ask the watchdog to replace serve |
//! | `emergency_mode` | `on` | switch emergency mode |
//! | `resource_cleanup` | `older_than`, `dirs` | remove old files of logs/, alerts/, diagnostics/ |
//! | `create_diagnostic_task` | `kernel`, `agent`, `dependencies` | `diagnose` request to `coding_agent` |
//! | `escalate` | `reason` | critical alert, `escalate_command`, `escalate_webhook`; incident closes `escalated` |
//! | `notify` | `message`, `level` | an alert file (and the `[alerts]` notifiers) |
//! | `exec` | `command` (string for `sh -c`, or argv list), `cwd`, `env` | run with `GRACE_INCIDENT_*` in its environment |
//! | `webhook` | `url`, `timeout` | POST the incident as JSON |
//! | `wait` | `duration`, `until_clear`, `min`, `clear_for` | sleep; with `until_clear`, end (after `min`) once the incident's condition has not held for `clear_for` |
//!
//! `create_snapshot`, `restore_from_snapshot`, `quarantine`, `rollback_deployment` and
//! `restore_model_weights` belong to the snapshot manager, which registers them with
//! the capability `snapshots`; playbooks that use them say `requires: [snapshots]`.

mod args;
mod control;
mod external;
mod host;
mod kernels;
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::incident::Incident;
use crate::tree::{System, TreeError};

pub use args::Args;
pub use external::{escalate_incident, incident_env};
pub use net::post_json;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The arguments are wrong; another attempt would fail the same way.
    #[error("action {action}: bad arguments: {reason}")]
    BadArgs {
        /// The action.
        action: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The action ran and failed; another attempt may succeed.
    #[error("{0}")]
    Failed(String),
    /// A call into the tree failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// I/O, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl ActionError {
    /// A failure with a reason.
    pub fn failed(reason: impl Into<String>) -> ActionError {
        ActionError::Failed(reason.into())
    }

    /// Whether another attempt may succeed (all but [`ActionError::BadArgs`]).
    pub fn retryable(&self) -> bool {
        !matches!(self, ActionError::BadArgs { .. })
    }
}

/// The output of an action that found nothing to do; the step is recorded `skipped`.
pub fn skipped(reason: impl Into<String>) -> Value {
    json!({ "skipped": true, "reason": reason.into() })
}

/// Whether an action output says it skipped.
pub fn is_skipped(output: &Value) -> bool {
    output.get("skipped").and_then(Value::as_bool) == Some(true)
}

/// What an action sees while it runs.
#[derive(Clone)]
pub struct ActionContext {
    /// The running system: bus, registry of kernels, state paths, config.
    pub system: Arc<System>,
    /// The incident being remediated.
    pub incident: Arc<Incident>,
    /// The playbook's name.
    pub playbook: String,
    /// The step's name.
    pub step: String,
    /// The bound on this attempt; actions pass it on to the calls they make.
    pub timeout: Duration,
    /// The attempt number, from 1.
    pub attempt: u32,
    escalation: Arc<Escalation>,
}

/// Whether (and why) a run escalated its incident; shared by the steps of one run.
#[derive(Debug, Default)]
pub struct Escalation {
    escalated: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Escalation {
    /// Marks the incident escalated.
    pub fn mark(&self, reason: &str) {
        self.escalated.store(true, Ordering::Release);
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some(reason.to_owned());
        }
    }

    /// Whether the incident was escalated, and the first reason given.
    pub fn get(&self) -> Option<String> {
        if self.escalated.load(Ordering::Acquire) {
            Some(self.reason.lock().clone().unwrap_or_default())
        } else {
            None
        }
    }
}

impl ActionContext {
    /// A context for one attempt of one step.
    pub fn new(
        system: Arc<System>,
        incident: Arc<Incident>,
        playbook: &str,
        step: &str,
        timeout: Duration,
        escalation: Arc<Escalation>,
    ) -> ActionContext {
        ActionContext {
            system,
            incident,
            playbook: playbook.to_owned(),
            step: step.to_owned(),
            timeout,
            attempt: 1,
            escalation,
        }
    }

    /// Marks the incident escalated: the dispatcher closes it as `escalated`.
    pub fn mark_escalated(&self, reason: &str) {
        self.escalation.mark(reason);
    }

    /// The playbook settings of the running configuration.
    pub fn config(&self) -> &crate::playbook::PlaybooksConfig {
        &self.system.config.playbooks
    }
}

/// Something a playbook step can do. Implement it to add your own action and register
/// it with [`ActionRegistry::register`] (see `examples/custom_action.rs`).
#[async_trait]
pub trait Action: Send + Sync + 'static {
    /// Does the work. Return what was done as JSON, [`skipped`] when there was nothing
    /// to do, or an error. The executor bounds each attempt by the step's timeout and
    /// retries a retryable error as the step allows.
    async fn run(&self, ctx: &ActionContext, args: &Args) -> Result<Value, ActionError>;

    /// Checks the arguments when the playbook is loaded (string values may still hold
    /// `{{...}}` templates). The error says what is wrong and how to fix it.
    fn validate(&self, _args: &Args) -> Result<(), String> {
        Ok(())
    }
}

/// Actions by name, and the capabilities (such as `snapshots`) whose actions are
/// present. [`ActionRegistry::default`] holds every built-in action.
#[derive(Clone)]
pub struct ActionRegistry {
    actions: BTreeMap<String, Arc<dyn Action>>,
    capabilities: BTreeSet<String>,
}

impl Default for ActionRegistry {
    fn default() -> Self {
        ActionRegistry::builtin()
    }
}

impl ActionRegistry {
    /// A registry without any action.
    pub fn empty() -> ActionRegistry {
        ActionRegistry {
            actions: BTreeMap::new(),
            capabilities: BTreeSet::new(),
        }
    }

    /// The built-in actions.
    pub fn builtin() -> ActionRegistry {
        let mut r = ActionRegistry::empty();
        kernels::register(&mut r);
        control::register(&mut r);
        host::register(&mut r);
        external::register(&mut r);
        crate::snapshot::register_actions(&mut r);
        r
    }

    /// Adds (or replaces) an action under `name`.
    pub fn register(&mut self, name: &str, action: impl Action) -> &mut ActionRegistry {
        self.actions.insert(name.to_owned(), Arc::new(action));
        self
    }

    /// Declares a capability present (`snapshots`): playbooks that require it load.
    pub fn provide(&mut self, capability: &str) -> &mut ActionRegistry {
        self.capabilities.insert(capability.to_owned());
        self
    }

    /// Whether a capability is present.
    pub fn provides(&self, capability: &str) -> bool {
        self.capabilities.contains(capability)
    }

    /// The action named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions.get(name).cloned()
    }

    /// The names of every action, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.actions.keys().map(String::as_str).collect()
    }
}
