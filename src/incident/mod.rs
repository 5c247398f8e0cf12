//! Incidents: the record, `incidents.jsonl`, and MTTR summaries.
