//! `grace chaos list` and `grace chaos run SCENARIO… [--report DIR] [--target URL |
//! --spawn]`.

use std::io::Write;
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

/// Width of `grace chaos list`'s lines: `$COLUMNS` when set, else 100.
fn line_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
        .unwrap_or(100)
}

/// `text`'s words in lines of at most `width` characters, broken only between words (a
/// word longer than `width` gets a line of its own, whole).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `grace chaos list`: name, faults, SLO and the whole description of each built-in
/// scenario, the description wrapped at word boundaries to the line width.
pub fn chaos_list(out: &mut dyn Write) -> anyhow::Result<()> {
    let all = chaos::builtins()?;
    let w = all.iter().map(|s| s.name.len()).max().unwrap_or(0).max(4);
    // NAME, FAULTS (6), SLO (8) and the spaces between them.
    let indent = w + 1 + 6 + 1 + 8 + 2;
    let room = line_width().saturating_sub(indent).max(30);
    writeln!(
        out,
        "{:<w$} {:>6} {:>8}  DESCRIPTION",
        "NAME", "FAULTS", "SLO"
    )?;
    for s in &all {
        let lines = wrap(&s.description, room);
        writeln!(
            out,
            "{:<w$} {:>6} {:>7}s  {}",
            s.name,
            s.all_faults().count(),
            s.slo.max_recovery.as_secs(),
            lines.first().map(String::as_str).unwrap_or("")
        )?;
        for l in lines.iter().skip(1) {
            writeln!(out, "{:indent$}{l}", "")?;
        }
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
    let result = if crate::telemetry::color::stdout_escapes() {
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

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_between_words_and_never_cuts_one() {
        let text = "Kill message_bus, self_healing and coding_agent at the same moment; \
                    the supervisor_of_supervisors_with_a_long_name restarts them.";
        let lines = wrap(text, 20);
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() <= 20 || !l.contains(' ')),
            "{lines:?}"
        );
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert!(lines
            .iter()
            .any(|l| l == "supervisor_of_supervisors_with_a_long_name"));
        assert!(wrap("", 10).is_empty());
    }
}
