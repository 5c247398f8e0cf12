//! The trust ledger: a score in [0, 1] per component.

mod config;

pub use config::TrustConfig;

mod ledger;

pub use ledger::TrustLedger;
