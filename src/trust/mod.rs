//! The trust ledger: a score in [0, 1] per component.
//!
//! A component starts at 1.0; a successful remediation raises its score, a failure or a
//! repeated incident lowers it ([`TrustConfig`] holds the amounts and the threshold the
//! trust_score trigger watches). Every change publishes `trust.score.update` with a
//! [`TrustUpdate`] payload, is appended to the audit log, and is persisted atomically in
//! `trust.json` in the state directory, so scores survive restarts of serve. The
//! arithmetic is the pure [`apply`].

mod config;
mod ledger;
mod score;

pub use config::TrustConfig;
pub use ledger::{TrustError, TrustLedger};
pub use score::{apply, clamp, Change, TrustUpdate};
