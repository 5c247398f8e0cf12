//! Diagnostics (the `coding_agent` kernel): evidence gathering and root-cause classification.

mod config;

pub use config::DiagnosticsConfig;
