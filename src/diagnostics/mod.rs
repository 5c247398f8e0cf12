//! Diagnostics (the `coding_agent` kernel): evidence gathering and root-cause
//! classification.
//!
//! A diagnostic task ([`diagnose`], or the `diagnose` request of [`CodingAgentKernel`])
//! gathers the [`Evidence`] of a failure: the error or panic message, the kernel's restart
//! history from the registry, recent incidents of the component, a resource sample (CPU,
//! memory, the state directory's disk), recent config drift and which dependencies (the
//! critical kernels, and any named in the request) are down. The pure [`classify`] turns
//! it into a [`Diagnosis`]: a [`RootCause`] with a confidence and recommended fixes, each
//! marked safe or not.
//!
//! Safe fixes (restart a dependency first, then the component; shed load; clear caches)
//! are applied at once when `[diagnostics] auto_apply_safe` is on (the default). The rest,
//! and any safe fix that failed, are escalated: `escalate_command` runs with the report's
//! path in `GRACE_DIAGNOSTIC_REPORT`, `escalate_webhook` receives the report as a JSON
//! POST, and `incident.escalated` is published in every case. Restoring drifted
//! configuration is escalated rather than applied: the change may have been intended, and
//! the config_drift trigger already runs `restore_from_snapshot` for undeployed changes.
//!
//! Every report is written atomically to `<state>/diagnostics/diag_<timestamp>_<component>.json`,
//! and the task appends `diagnostics.fix`, `diagnostics.escalated` and
//! `diagnostics.report` records to the audit log.

mod classify;
#[cfg(test)]
mod classify_tests;
mod config;
mod escalate;
mod evidence;
mod fix;
mod kernel;
mod recommend;
mod report;
mod resources;
mod task;

pub use classify::{
    classify, Candidate, Diagnosis, Fix, FixAction, RootCause, MAX_CONFIDENCE, MIN_CONFIDENCE,
    UNKNOWN_CONFIDENCE,
};
pub use config::DiagnosticsConfig;
pub use evidence::{
    gather, gather_with, DependencyDown, DiagnoseRequest, Evidence, IncidentEvidence,
    KernelEvidence, Thresholds,
};
pub use kernel::CodingAgentKernel;
pub use report::{ChannelOutcome, DiagnosticReport, Escalation, FixOutcome};
pub use resources::{sample, ResourceSample};
pub use task::{diagnose, DiagnosticsError, TaskOptions};
