//! Telemetry: tracing set-up (JSON lines to `logs/grace.jsonl`, readable text to
//! stderr), the periodic `actor_metrics` events, and the latency histogram.

mod histogram;

pub use histogram::Histogram;
