//! Incidents: the record, `incidents.jsonl`, and MTTR summaries.

mod config;

pub use config::IncidentsConfig;

mod model;
mod store;

pub use model::{Incident, IncidentDraft, IncidentStatus, Severity, StepRecord};
pub use store::{IncidentError, IncidentStore};
