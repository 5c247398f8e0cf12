//! Triggers: actors that watch signals and open incidents.

mod config;

pub use config::TriggersConfig;
