//! The OS-process watchdog (`grace watch`): runs serve, restarts it, honours the kill switch.

mod config;
pub mod policy;
mod process;

pub use config::WatchdogConfig;

/// Set in the environment of a watchdog started in the background by `grace start`: it
/// then leaves the caller's session (setsid) before anything else.
pub const DETACH_ENV: &str = "GRACE_WATCHDOG_DETACH";
