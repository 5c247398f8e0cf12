//! Playbooks: YAML remediation recipes, their actions, and the dispatcher (the
//! `self_healing` kernel).
//!
//! - [`model`]: what a playbook file says; [`load_playbooks`] reads the embedded
//!   defaults (`playbooks/*.yaml` in the repository) and the configured directory,
//!   validating each file with file and line.
//! - [`action`]: the [`Action`] trait, the built-in actions and the
//!   [`ActionRegistry`] library users add theirs to.
//! - The executor ([`Run`]) runs one playbook for one incident: steps in order, each
//!   with retries, retry delay, timeout and `continue_on_failure`, or a `parallel`
//!   group; it publishes `playbook.started`, `playbook.step`, `playbook.finished` and
//!   appends each step to the audit log.
//! - The [`Dispatcher`] and its kernel [`SelfHealingKernel`] take incident events off
//!   the bus, apply rate limits, cooldowns and the concurrency bound, run the chosen
//!   playbook and close the incident.
//!
//! The decisions (template expansion, step outcomes, rate limit and cooldown) are plain
//! functions in [`template`], [`outcome`] and [`limit`].

pub mod action;
mod config;
mod defaults;
mod dispatcher;
mod executor;
pub mod harm;
mod kernel;
mod lifecycle;
pub mod limit;
mod load;
mod locate;
pub mod model;
pub mod outcome;
mod stats;
pub mod steady;
pub mod template;
mod validate;
pub mod verify;

pub use action::{Action, ActionContext, ActionError, ActionRegistry, Args};
pub use config::PlaybooksConfig;
pub use defaults::DEFAULT_PLAYBOOKS;
pub use dispatcher::{Dispatched, Dispatcher};
pub use executor::{Run, RunReport};
pub use kernel::{SelfHealingKernel, SUBSCRIBER, TOPICS};
pub use load::{
    load_configured, load_playbooks, load_playbooks_with, PlaybookSet, SkippedPlaybook,
};
pub use model::{Dur, Playbook, RateLimit, Step};
pub use stats::{DispatcherStats, PlaybookCounts, StatsSnapshot};
pub use validate::{parse_playbook, Parsed};
pub use verify::{VerifyOverrides, VerifySettings};
