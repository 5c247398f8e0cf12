//! Running scenarios: start or reach the target, wait for the steady state, inject on
//! schedule while observing, stop when the system is back (or a bound passes, or an
//! abort condition holds), clean up, and judge.
//!
//! This module starts or reaches the target and hands each scenario to `drive` (the
//! steady-state wait, the observing loop, the clean-up and the verdict); `faults` runs
//! each fault on its schedule and keeps what became of it.

use std::path::PathBuf;
use std::time::Duration;

mod drive;
mod faults;

use super::client::{Client, Endpoint};
use super::inject::{Control, Ctx};
use super::measure::{self, Facts};
use super::progress::{Event, Progress};
use super::report::{RunReport, ScenarioReport};
use super::scenario::Scenario;
use super::spawn::Instance;
use super::ChaosError;
use crate::state::StatePaths;
use drive::drive;

/// What the scenarios run against.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// A fresh instance per scenario, started with this grace binary.
    Spawn {
        /// The binary (`std::env::current_exe()`, or `CARGO_BIN_EXE_grace` in tests).
        exe: PathBuf,
    },
    /// An instance that is already running.
    Existing {
        /// Its URL (`http://127.0.0.1:8000`); `None` follows `serve.json` in the state
        /// directory.
        url: Option<String>,
        /// Its state directory (token, serve.json, watchdog.pid).
        state_dir: PathBuf,
        /// The grace binary and config, for kill_switch faults.
        control: Option<(PathBuf, Option<PathBuf>)>,
    },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The target.
    pub target: TargetSpec,
    /// How long a spawned instance may take to become healthy.
    pub ready_within: Duration,
}

impl RunOptions {
    /// Options for `target` with the default bounds.
    pub fn new(target: TargetSpec) -> RunOptions {
        RunOptions {
            target,
            ready_within: Duration::from_secs(30),
        }
    }
}

/// Runs `scenarios` one after the other. Ctrl-C stops the run: every guard is
/// dropped (sieges stopped, files and ports released, processes continued, a spawned
/// instance killed) and [`ChaosError::Interrupted`] is returned.
pub async fn run_scenarios(
    scenarios: &[Scenario],
    opts: &RunOptions,
    progress: &mut dyn Progress,
) -> Result<RunReport, ChaosError> {
    let all = async {
        let mut reports = Vec::new();
        for s in scenarios {
            let r = run_one(s, opts, &mut *progress).await;
            progress.event(Event::Finished { report: &r });
            reports.push(r);
        }
        reports
    };
    tokio::select! {
        reports = all => Ok(RunReport::new(reports)),
        _ = tokio::signal::ctrl_c() => Err(ChaosError::Interrupted),
    }
}

fn empty_report(s: &Scenario, target: &str) -> ScenarioReport {
    ScenarioReport {
        name: s.name.clone(),
        description: s.description.clone(),
        seed: s.seed,
        target: target.to_owned(),
        started_at: crate::time::rfc3339(crate::time::now()),
        max_recovery_s: s.slo.max_recovery.as_secs_f64(),
        max_detection_s: s.slo.max_detection.map(|d| d.as_secs_f64()),
        error: None,
        aborted: None,
        assessment: measure::assess(
            &s.slo,
            &[],
            &[],
            &Default::default(),
            &Facts::default(),
            None,
        ),
        timeline: Default::default(),
        cleanup: Vec::new(),
    }
}

async fn run_one(s: &Scenario, opts: &RunOptions, progress: &mut dyn Progress) -> ScenarioReport {
    let planned = (s.injection_end() + s.slo.max_recovery).as_secs_f64();
    progress.event(Event::Started {
        name: &s.name,
        planned,
    });
    match &opts.target {
        TargetSpec::Spawn { exe } => {
            let mut report = empty_report(s, "spawned");
            progress.event(Event::Phase {
                name: &s.name,
                text: "starting an instance (grace watch over grace serve --port 0)",
            });
            let inst = match Instance::start(exe, s, opts.ready_within).await {
                Ok(i) => i,
                Err(e) => {
                    report.error = Some(e.to_string());
                    return report;
                }
            };
            let ctx = Ctx {
                client: inst.client(),
                paths: inst.paths.clone(),
                control: Some(inst.control()),
                seed: s.seed,
            };
            drive(s, &ctx, &mut report, progress).await;
            progress.event(Event::Phase {
                name: &s.name,
                text: "stopping the instance",
            });
            report.cleanup.extend(inst.stop().await);
            report
        }
        TargetSpec::Existing {
            url,
            state_dir,
            control,
        } => {
            let paths = StatePaths::new(state_dir);
            let label = url
                .clone()
                .unwrap_or_else(|| format!("serve.json in {}", state_dir.display()));
            let mut report = empty_report(s, &label);
            let endpoint = match url {
                None => Endpoint::ServeJson(paths.serve_json()),
                Some(u) => match Endpoint::from_url(u) {
                    Ok(e) => e,
                    Err(e) => {
                        report.error = Some(e.to_string());
                        return report;
                    }
                },
            };
            let token = std::fs::read_to_string(paths.token())
                .ok()
                .map(|t| t.trim().to_owned());
            if !s.config.is_empty() {
                report.cleanup.push(
                    "the scenario's config overrides were not applied (--target): the target's own grace.toml must allow these faults".to_owned(),
                );
            }
            let ctx = Ctx {
                client: Client::new(endpoint, token),
                control: control.as_ref().map(|(exe, config)| {
                    let mut global: Vec<std::ffi::OsString> = Vec::new();
                    if let Some(c) = config {
                        global.extend(["--config".into(), c.clone().into_os_string()]);
                    }
                    global.extend(["--state-dir".into(), state_dir.clone().into_os_string()]);
                    Control {
                        exe: exe.clone(),
                        global,
                        serve_args: Vec::new(),
                    }
                }),
                paths,
                seed: s.seed,
            };
            drive(s, &ctx, &mut report, progress).await;
            report
        }
    }
}
