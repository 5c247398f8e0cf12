//! The command-line commands, as library functions the `grace` binary calls.
//!
//! Each command returns `anyhow::Result<()>`; errors that are the user's to fix (bad
//! usage, bad configuration) carry a [`UsageError`] or a config error in their chain,
//! which the binary maps to exit status 2. Everything else is status 1.

mod args;
pub mod control;

pub use args::{AuditCommand, Cli, Command, ServeArgs};

/// An error the user must fix in how they called Grace (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error: 2 when its chain holds a usage or configuration error,
/// else 1.
pub fn exit_status(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::config::ConfigError>() {
            return 2;
        }
    }
    1
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match control::dispatch(&cli) {
        Some(r) => r,
        None => anyhow::bail!("not built yet"),
    }
}
