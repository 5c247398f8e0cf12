//! Triggers: actors that watch what a crash does not show (hangs, API timeouts,
//! latency, resource pressure, error bursts, drift, corruption, falling trust) and
//! publish what they find for the playbook dispatcher.
//!
//! Each trigger is a kernel under the `triggers` supervisor ([`triggers_supervisor`]).
//! A trigger implements [`Trigger`]: at every heartbeat tick of its kernel it checks its
//! signal and returns the conditions that hold ([`Finding`]); between ticks it may
//! drain a bus subscription. [`TriggerKernel`] feeds every finding through the
//! trigger's [`Rule`]:
//!
//! - **`for`**: a condition must hold that long before it fires; a check that finds it
//!   cleared starts the wait again (Prometheus alerting rules).
//! - **deduplication**: a condition that keeps holding is published again at most every
//!   `repeat_interval`; the incident store counts those as occurrences of the open
//!   incident for the same (trigger, component).
//! - **flap detection**: Nagios' weighted percent state change over the last 21 checks,
//!   starting at 50% and stopping below 25%. A flapping condition is published once as
//!   `event.early_warning` with failure mode `flapping`, and its remediation is
//!   suppressed until it stops flapping.
//!
//! What fires is published on the bus as `event.incident`, `event.emergency` or
//! `event.early_warning` with an [`crate::incident::IncidentDraft`] as payload.
//! Triggers never open incidents or run playbooks themselves.
//!
//! Architecture invariant: the decisions (`for`, deduplication, flapping, burst
//! baselines, cron, signature normalisation, drift comparison) are plain functions with
//! no runtime in them; the kernels only gather signals and publish.
//!
//! Library users add their own trigger by implementing [`Trigger`] and giving
//! [`trigger_spec`]'s kernel spec to the tree (`crate::tree::Extensions::triggers`,
//! which reaches [`triggers_supervisor_with`]); see `examples/custom_trigger.rs`.

mod actor;
mod api;
pub mod builtin;
mod checksum;
mod config;
pub mod cron;
mod error;
pub mod flap;
mod holding;
pub mod rule;
mod sections;
mod signals;
mod tree;
mod validate;
pub mod watch;

pub use actor::{GateBook, Outgoing, TriggerKernel};
pub use api::{is_informational, Alert, Finding, Level, Trigger};
pub use checksum::{classify_read_error, expand, sha256_file, HashCache, ReadFailure};
pub use config::{
    ApiTimeoutConfig, Common, ConfigDriftConfig, CriticalHeartbeatConfig, EventAnomalyConfig,
    ExecTriggerConfig, HeartbeatFailureConfig, KpiThresholdConfig, LatencyQueueConfig,
    ModelIntegrityConfig, RepeatedErrorConfig, ResourceScope, ResourceSpikeConfig,
    SandboxFailureConfig, ScheduledConfig, TriggersConfig, TrustScoreConfig,
};
pub use error::TriggerError;
pub use holding::{ConditionKey, Conditions};
pub use rule::Rule;
pub use signals::{ApiSignals, ApiWindow};
pub use tree::{
    builtin_specs, heartbeat_timeout, trigger_child, trigger_spec, triggers_supervisor,
    triggers_supervisor_with, KERNEL_PREFIX, SUPERVISOR_NAME,
};
