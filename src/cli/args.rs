//! The command-line grammar (clap). Kept in the library so tests and docs share it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Grace: a self-healing runtime for long-running services.
#[derive(Debug, Parser)]
#[command(name = "grace", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./grace.toml if present, else the embedded default).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (default: $GRACE_STATE_DIR, else .grace/ beside the config).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of `grace serve`, passed on by `grace watch` and `grace start`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// HTTP port (0 picks a free one; serve.json tells which). Default from config: 8000.
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP bind address. Default from config: 127.0.0.1.
    #[arg(long)]
    pub bind: Option<String>,
    /// Turn on the fault-injection endpoints (`[chaos] enabled = true`) for this run,
    /// whatever the config says. `GRACE_CHAOS=1` in the environment does the same.
    #[arg(long)]
    pub chaos: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the supervision tree in the foreground.
    Serve(ServeArgs),
    /// Run the watchdog in the foreground, supervising serve.
    Watch(ServeArgs),
    /// Clear the kill switch, start a background watchdog if none runs, wait for health.
    Start(ServeArgs),
    /// Set the kill switch and stop serve gracefully.
    Stop {
        /// Stop the watchdog too.
        #[arg(long)]
        all: bool,
    },
    /// Restart serve without touching the kill switch.
    Restart,
    /// Kill switch, PIDs, health, resources, kernels, open incidents. Exits 0 when serve
    /// runs healthy, 1 degraded (or dead with its pid left), 3 not running.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The watchdog's and serve's log records, merged by time (rotated files included).
    Logs {
        /// Follow new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines to show.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
        /// Only records at this level or more severe.
        #[arg(long, value_enum, value_name = "LEVEL")]
        level: Option<crate::watchdog::log_filter::LogLevel>,
        /// Only records of this source: `serve`, `watchdog`, or a target such as
        /// `grace::http` or `http` (its submodules included).
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// Only records from this time on: a duration back from now (`10m`, `1h 30m`)
        /// or a timestamp (`2026-01-31T08:00:00Z`, `2026-01-31 08:00:00` in UTC).
        #[arg(long, value_name = "DURATION|TIMESTAMP")]
        since: Option<String>,
    },
    /// Incidents with MTTR, and a summary.
    Incidents {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only open incidents.
        #[arg(long)]
        open: bool,
    },
    /// The audit log.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// After a deploy: snapshot every watched file now and accept the current config
    /// files as config_drift's new baseline.
    Snapshot {
        /// Only take the snapshots; keep config_drift's baseline.
        #[arg(long)]
        no_accept: bool,
    },
    /// Write a starter grace.toml and the built-in playbooks (playbooks/*.yaml); files
    /// already there are kept and named.
    Init {
        /// Directory to write into (default: the working directory).
        dir: Option<PathBuf>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration and playbooks.
    Check,
    /// Chaos scenarios: inject faults, measure detection and recovery against an SLO.
    Chaos {
        /// What to do.
        #[command(subcommand)]
        action: super::chaos::ChaosCommand,
    },
    /// Print a shell completion script (`grace completions bash > /etc/bash_completion.d/grace`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `grace audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; name the first bad record.
    Verify,
}
