//! The append-only, hash-chained audit log (`audit.log`) and its verifier.

mod config;

pub use config::AuditConfig;

mod log;

pub use log::{AuditError, AuditLog};
