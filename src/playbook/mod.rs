//! Playbooks: YAML remediation recipes, their actions, and the dispatcher (`self_healing`).

mod config;

pub use config::PlaybooksConfig;
