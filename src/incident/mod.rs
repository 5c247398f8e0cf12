//! Incidents: the record, `incidents.jsonl`, and MTTR summaries.
//!
//! [`IncidentStore`] is the one writer of `incidents.jsonl` (inside `grace serve`): it
//! opens incidents from the drafts triggers publish, deduplicating one open incident per
//! (trigger, component), records every state change as a full JSON line and as an audit
//! record, and answers the queries of the HTTP API and dashboard. Closed incidents past
//! `[incidents] retain_closed` move to monthly segments (`incidents/<YYYY-MM>.jsonl`).
//! [`read_incidents`] is for readers such as `grace incidents`: it folds the file and its
//! segments by `incident_id` and tolerates a torn last line. The store records; publishing `event.incident` is the dispatcher's.
//! [`import_watchdog_repairs`] turns the watchdog's repairs of serve into incidents.

mod config;
mod ids;
mod journal;
mod kernel;
mod model;
mod query;
mod store;
mod summary;
mod watchdog_import;

pub use config::IncidentsConfig;
pub use ids::{format_id, parse_id};
pub use journal::{fold, read_incidents, read_journal, Journal};
pub use kernel::IncidentLogKernel;
pub use model::{
    ClosedReason, Incident, IncidentDraft, IncidentStatus, Opened, Severity, StepRecord,
};
pub use store::{segment_files, segments_dir, Closing, IncidentError, IncidentStore};
pub use summary::{format_seconds, percentile, summarize, StatusCounts, Summary};
pub use watchdog_import::{
    import_watchdog_repairs, import_watchdog_repairs_logged, repair_incident,
};
