//! The OS-process watchdog (`grace watch`): runs serve, restarts it, honours the kill switch.

mod config;

pub use config::WatchdogConfig;
