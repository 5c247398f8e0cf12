//! `grace chaos list` and `grace chaos run SCENARIO… [--report DIR] [--target URL |
//! --spawn]`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::UsageError;
use crate::chaos::progress::{Bar, Lines};
use crate::chaos::report::{summary_table, RunReport};
use crate::chaos::{self, ChaosError, RunOptions, Scenario, TargetSpec};

/// `grace chaos ...`.
#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// List the built-in scenarios.
    List,
    /// Run scenarios: built-in names (any case) or YAML files.
    Run(ChaosRunArgs),
}

/// Options of `grace chaos run`.
#[derive(Debug, Args)]
pub struct ChaosRunArgs {
    /// Scenarios: built-in names such as `dirt01`, or paths of YAML files.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// Write report.json, summary.txt and a timeline SVG per scenario here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Run against the instance at this URL (its --state-dir gives the token).
    #[arg(long, value_name = "URL", conflicts_with = "spawn")]
    pub target: Option<String>,
    /// Start a fresh instance per scenario (grace watch over grace serve --port 0, in
    /// a temporary directory, chaos enabled) and tear it down afterwards.
    #[arg(long)]
    pub spawn: bool,
}

/// `grace chaos list`: name, faults, SLO and description of each built-in scenario.
pub fn chaos_list(out: &mut dyn Write) -> anyhow::Result<()> {
    let all = chaos::builtins()?;
    let w = all.iter().map(|s| s.name.len()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "{:<w$} {:>6} {:>8}  DESCRIPTION",
        "NAME", "FAULTS", "SLO"
    )?;
    for s in &all {
        let first = s.description.split(". ").next().unwrap_or_default();
        let mut desc: String = first.chars().take(72).collect();
        if first.chars().count() > 72 {
            desc.push_str("...");
        }
        writeln!(
            out,
            "{:<w$} {:>6} {:>7}s  {}",
            s.name,
            s.all_faults().count(),
            s.slo.max_recovery.as_secs(),
            desc.trim_end_matches('.')
        )?;
    }
    writeln!(
        out,
        "\nRun one with `grace chaos run NAME --spawn`; a path to a YAML file works too."
    )?;
    Ok(())
}

fn usage(e: ChaosError) -> anyhow::Error {
    if e.is_usage() {
        anyhow::Error::new(UsageError(e.to_string()))
    } else {
        e.into()
    }
}

/// `grace chaos run`: returns the exit status (0 when every scenario passed, 1 when
/// one missed its SLO or did not come back, 130 when interrupted).
pub fn chaos_run(
    args: ChaosRunArgs,
    config: Option<&Path>,
    state_dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let scenarios: Vec<Scenario> = args
        .scenarios
        .iter()
        .map(|n| chaos::find(n))
        .collect::<Result<_, _>>()
        .map_err(usage)?;
    let target = if args.spawn {
        TargetSpec::Spawn {
            exe: std::env::current_exe()?,
        }
    } else {
        let paths = crate::state::StatePaths::resolve(state_dir, config);
        let exe = std::env::current_exe().ok();
        TargetSpec::Existing {
            url: args.target.clone(),
            state_dir: paths.root().to_path_buf(),
            control: exe.map(|e| (e, config.map(Path::to_path_buf))),
        }
    };
    if let TargetSpec::Existing {
        url: None,
        state_dir,
        ..
    } = &target
    {
        if !state_dir.join("serve.json").is_file() {
            return Err(UsageError(format!(
                "no target: pass --spawn to start a fresh instance, or --target URL (with --state-dir) for a running one; no serve runs for {}",
                state_dir.display()
            ))
            .into());
        }
    }
    let planned: f64 = scenarios
        .iter()
        .map(|s| (s.injection_end() + s.slo.max_recovery).as_secs_f64())
        .sum();
    writeln!(
        out,
        "running {} scenario(s), at most about {:.0} s of injection and recovery",
        scenarios.len(),
        planned
    )?;
    let opts = RunOptions::new(target);
    let rt = super::runtime()?;
    let result = if std::io::stdout().is_terminal() {
        let mut p = Bar::new(std::io::stdout());
        rt.block_on(chaos::run_scenarios(&scenarios, &opts, &mut p))
    } else {
        let mut p = Lines(std::io::stdout());
        rt.block_on(chaos::run_scenarios(&scenarios, &opts, &mut p))
    };
    let report: RunReport = match result {
        Ok(r) => r,
        Err(ChaosError::Interrupted) => {
            writeln!(
                out,
                "\ninterrupted: everything the harness created was undone"
            )?;
            return Ok(130);
        }
        Err(e) => return Err(usage(e)),
    };
    writeln!(out)?;
    write!(out, "{}", summary_table(&report))?;
    if let Some(dir) = &args.report {
        let files = report.write(dir)?;
        writeln!(
            out,
            "report: {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    Ok(if report.passed { 0 } else { 1 })
}
