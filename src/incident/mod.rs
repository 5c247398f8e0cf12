//! Incidents: the record, `incidents.jsonl`, and MTTR summaries.

mod config;

pub use config::IncidentsConfig;

mod store;

pub use store::{IncidentError, IncidentStore};
