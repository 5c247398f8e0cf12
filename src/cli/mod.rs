//! The command-line commands, as library functions the `grace` binary calls.
//!
//! Each command returns `anyhow::Result<()>`; errors that are the user's to fix (bad
//! usage, bad configuration) carry a [`UsageError`] or a config error in their chain,
//! which the binary maps to exit status 2. Everything else is status 1.

mod args;
mod audit;
mod chaos;
pub mod control;
mod incidents;
mod init;
mod snapshot;
mod stop;

pub use args::{AuditCommand, Cli, Command, ServeArgs};
pub use audit::audit_verify;
pub use chaos::{chaos_list, chaos_run, ChaosCommand, ChaosRunArgs};
pub use incidents::incidents;
pub use init::{check, init, starter_files};
pub use snapshot::snapshot;

/// An error the user must fix in how they called Grace (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error: 2 when its chain holds a usage or configuration error,
/// else 1.
pub fn exit_status(err: &anyhow::Error) -> i32 {
    use crate::serve::ServeError;
    use crate::tree::StartError;
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::config::ConfigError>() {
            return 2;
        }
        // Serve's configuration errors are transparent: the chain shows only the
        // serve error that holds them.
        if matches!(
            cause.downcast_ref::<ServeError>(),
            Some(ServeError::Config(_) | ServeError::Tree(StartError::Config(_)))
        ) || matches!(
            cause.downcast_ref::<StartError>(),
            Some(StartError::Config(_))
        ) {
            return 2;
        }
    }
    1
}

/// Whether the error is the reader of stdout going away (`grace chaos list | head`):
/// the output was cut short on purpose, nothing to report.
pub fn reader_went_away(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs one command; `Ok(code)` is the exit status of a command that finished (serve
/// and watch can end with a non-zero status that is not an error).
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Some(r) = control::dispatch(&cli) {
        return r.map(|()| 0);
    }
    let stdout = &mut std::io::stdout();
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Init { dir, force } => {
            init(
                dir.as_deref().unwrap_or(std::path::Path::new(".")),
                force,
                stdout,
            )?;
            Ok(0)
        }
        Command::Check => {
            check(config_path, stdout)?;
            Ok(0)
        }
        Command::Serve(args) => {
            let mut loaded = crate::config::load(config_path)?;
            if chaos_requested(args.chaos)? {
                loaded.config.chaos.enabled = true;
            }
            let paths =
                crate::state::StatePaths::resolve(cli.state_dir.as_deref(), loaded.source.path());
            let rt = runtime()?;
            let code = rt.block_on(crate::serve::run(crate::serve::ServeOptions {
                loaded,
                paths,
                port: args.port,
                bind: args.bind,
            }))?;
            Ok(code)
        }
        Command::Incidents { json, open } => {
            incidents(
                &state_paths(&cli.state_dir, config_path)?,
                json,
                open,
                stdout,
            )?;
            Ok(0)
        }
        Command::Snapshot { no_accept } => {
            snapshot(config_path, cli.state_dir.as_deref(), !no_accept, stdout)?;
            Ok(0)
        }
        Command::Audit {
            action: AuditCommand::Verify,
        } => {
            let ok = audit_verify(&state_paths(&cli.state_dir, config_path)?, stdout)?;
            Ok(if ok { 0 } else { 1 })
        }
        Command::Watch(_)
        | Command::Start(_)
        | Command::Stop { .. }
        | Command::Restart
        | Command::Status { .. }
        | Command::Logs { .. } => unreachable_control(),
        Command::Completions { shell } => {
            // Into memory first: the generator panics on a failed write.
            let mut script = Vec::new();
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "grace", &mut script);
            std::io::Write::write_all(stdout, &script)?;
            Ok(0)
        }
        Command::Chaos { action } => match action {
            ChaosCommand::List => {
                chaos_list(stdout)?;
                Ok(0)
            }
            ChaosCommand::Run(args) => {
                chaos_run(args, config_path, cli.state_dir.as_deref(), stdout)
            }
        },
    }
}

/// The environment variable that turns the chaos endpoints on, as `--chaos` does.
pub const CHAOS_ENV: &str = "GRACE_CHAOS";

/// Whether this run turns the chaos endpoints on: `--chaos`, or `GRACE_CHAOS` set to
/// `1`/`true`/`yes`/`on` (`0`/`false`/`no`/`off` or empty leave the config's choice).
pub fn chaos_requested(flag: bool) -> Result<bool, UsageError> {
    let Some(v) = std::env::var_os(CHAOS_ENV) else {
        return Ok(flag);
    };
    let v = v.to_string_lossy().trim().to_ascii_lowercase();
    match v.as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(flag),
        _ => Err(UsageError(format!(
            "{CHAOS_ENV}={v:?} is not understood: set it to 1 to turn the chaos endpoints on, \
             or 0 (or unset it) to leave them as the config says"
        ))),
    }
}

/// The state directory a read-only command looks at: the config file only tells where
/// `.grace/` is, so a config that does not parse still lets `--state-dir` work.
fn state_paths(
    state_dir: &Option<std::path::PathBuf>,
    config_path: Option<&std::path::Path>,
) -> anyhow::Result<crate::state::StatePaths> {
    if state_dir.is_some() {
        return Ok(crate::state::StatePaths::resolve(
            state_dir.as_deref(),
            None,
        ));
    }
    let loaded = crate::config::load(config_path)?;
    Ok(crate::state::StatePaths::resolve(
        None,
        loaded.source.path(),
    ))
}

fn unreachable_control() -> anyhow::Result<i32> {
    // `control::dispatch` handles these before the match; reaching here is a bug in
    // this dispatcher, reported as a run-time failure rather than a panic.
    anyhow::bail!("internal error: control command not dispatched")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::serve::ServeError;
    use crate::tree::StartError;

    #[test]
    fn configuration_errors_map_to_2_however_deep() {
        let config = || ConfigError("g.toml:1:1: bad".into());
        assert_eq!(exit_status(&anyhow::Error::new(config())), 2);
        assert_eq!(exit_status(&ServeError::Config(config()).into()), 2);
        let tree = ServeError::Tree(StartError::Config(config()));
        assert_eq!(exit_status(&tree.into()), 2);
        let wrapped = anyhow::Error::new(StartError::Config(config())).context("starting");
        assert_eq!(exit_status(&wrapped), 2);
        let other = ServeError::Signals(std::io::Error::other("no"));
        assert_eq!(exit_status(&other.into()), 1);
    }
}
