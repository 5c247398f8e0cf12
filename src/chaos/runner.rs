//! Running scenarios: start or reach the target, wait for the steady state, inject on
//! schedule while observing, stop when the system is back (or a bound passes, or an
//! abort condition holds), clean up, and judge.

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{Client, Endpoint};
use super::guard::Corrupted;
use super::inject::{inject_once, Control, Ctx, Held};
use super::measure::{self, Check, Facts, FaultClass, FaultRecord};
use super::monitor::Monitor;
use super::progress::{Event, Progress};
use super::report::{RunReport, ScenarioReport};
use super::scenario::{Fault, FaultKind, Probe, Process, Scenario};
use super::spawn::Instance;
use super::ChaosError;
use crate::state::StatePaths;

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

fn class_of(kind: &FaultKind) -> FaultClass {
    match kind {
        FaultKind::Kernel { kernel, .. } => FaultClass::Kernel(kernel.clone()),
        FaultKind::Sigkill {
            process: Process::Serve,
        }
        | FaultKind::Sigstop {
            process: Process::Serve,
        }
        | FaultKind::OccupyPort => FaultClass::Serve,
        FaultKind::Sigkill {
            process: Process::Watchdog,
        }
        | FaultKind::Sigstop {
            process: Process::Watchdog,
        } => FaultClass::Watchdog,
        FaultKind::KillSwitch { .. } => FaultClass::Operator,
        _ => FaultClass::Other,
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

/// One fault's progress, shared between its injecting task and the observer.
#[derive(Debug, Default)]
struct Slot {
    injected_at: Option<f64>,
    ended_at: Option<f64>,
    error: Option<String>,
    notes: Vec<String>,
    done: bool,
    told: u8,
}

struct Shared {
    slots: Mutex<Vec<Slot>>,
    corrupted: Mutex<Vec<Corrupted>>,
    until_end: Mutex<Vec<Held>>,
}

async fn wait_until(at: Instant, abort: &mut watch::Receiver<bool>) -> bool {
    if *abort.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => true,
        _ = abort.wait_for(|a| *a) => false,
    }
}

async fn run_fault(
    ix: usize,
    at: Duration,
    fault: &Fault,
    ctx: &Ctx,
    t0: Instant,
    shared: &Shared,
    mut abort: watch::Receiver<bool>,
) {
    let finish = |error: Option<String>| {
        let mut slots = shared.slots.lock();
        let slot = &mut slots[ix];
        slot.ended_at = Some(t0.elapsed().as_secs_f64());
        if error.is_some() {
            slot.error = error;
        }
        slot.done = true;
    };
    for rep in 0..fault.repeat {
        if !wait_until(t0 + at + fault.every * rep, &mut abort).await {
            let never = shared.slots.lock()[ix].injected_at.is_none();
            return finish(never.then(|| "not injected: the scenario was aborted".to_owned()));
        }
        let t = t0.elapsed().as_secs_f64();
        let injected = match inject_once(&fault.kind, fault.duration, ctx, rep).await {
            Ok(i) => i,
            Err(e) => return finish(Some(e.to_string())),
        };
        {
            let mut slots = shared.slots.lock();
            let slot = &mut slots[ix];
            slot.injected_at.get_or_insert(t);
            slot.notes.extend(injected.notes);
        }
        if let Some(c) = injected.corrupted {
            shared.corrupted.lock().push(c);
        }
        let held = injected.held;
        match fault.duration {
            // The fault lasts this long (server-side faults too): then its guard drops.
            Some(d) => {
                let _ = wait_until(
                    Instant::now().max(t0 + Duration::from_secs_f64(t)) + d,
                    &mut abort,
                )
                .await;
                drop(held);
            }
            None if !matches!(held, Held::Nothing) => shared.until_end.lock().push(held),
            None => {}
        }
    }
    finish(None)
}

fn record_of(fault: &Fault, slot: &Slot) -> FaultRecord {
    let injected_at = slot.injected_at.unwrap_or(0.0);
    FaultRecord {
        label: fault.kind.label(),
        class: class_of(&fault.kind),
        injected_at,
        ended_at: slot.ended_at.unwrap_or(injected_at).max(injected_at),
        error: if slot.injected_at.is_none() && slot.error.is_none() {
            Some("not injected".to_owned())
        } else {
            slot.error.clone()
        },
        notes: slot.notes.clone(),
        // Serve is repaired while these faults still hold: it moves off a port that
        // someone else keeps, and the watchdog replaces a serve that stays stopped.
        heals_during: matches!(
            fault.kind,
            FaultKind::OccupyPort
                | FaultKind::Sigstop {
                    process: Process::Serve
                }
        ),
    }
}

/// Whether every corrupted file the system is meant to restore has its old content.
/// Snapshots are not among them: a corrupted snapshot is skipped by restores, not
/// repaired (and a file restored from it would not have its old content).
fn files_restored(shared: &Shared, state: &std::path::Path) -> Option<bool> {
    let snapshots = state.join("snapshots");
    let c = shared.corrupted.lock();
    let live: Vec<&Corrupted> = c
        .iter()
        .filter(|c| !c.path().starts_with(&snapshots))
        .collect();
    (!live.is_empty()).then(|| live.iter().all(|c| c.restored()))
}

/// Injects and observes; fills `report`.
async fn drive(s: &Scenario, ctx: &Ctx, report: &mut ScenarioReport, progress: &mut dyn Progress) {
    let mut extra: Vec<_> = s.abort.iter().map(|a| a.probe.clone()).collect();
    extra.extend(s.before.iter().cloned());
    let mut mon = Monitor::new(
        ctx.client.clone(),
        ctx.paths.clone(),
        s.steady_state.clone(),
        &extra,
    );
    progress.event(Event::Phase {
        name: &s.name,
        text: "waiting for the steady state",
    });
    let warm_until = Instant::now() + s.warmup();
    loop {
        mon.observe().await;
        let not_yet: Vec<String> = s
            .before
            .iter()
            .filter(|p| !mon.probe_ok(p))
            .map(Probe::label)
            .collect();
        if mon.steady_ok() && not_yet.is_empty() {
            break;
        }
        if Instant::now() >= warm_until {
            let mut failing = mon.last_failing.clone();
            failing.extend(
                not_yet
                    .into_iter()
                    .map(|p| format!("{p} (before injection)")),
            );
            report.error = Some(format!(
                "the steady state does not hold before injection (waited {:?}): {}",
                s.warmup(),
                failing.join("; ")
            ));
            report.timeline = mon.timeline.clone();
            return;
        }
        tokio::time::sleep(s.poll()).await;
    }
    let (t0, _) = mon.rebase();
    report.started_at = crate::time::rfc3339(crate::time::now());
    let faults: Vec<(Duration, &Fault)> = s
        .faults
        .iter()
        .flat_map(|st| st.faults.iter().map(move |f| (st.at, f)))
        .collect();
    let shared = Shared {
        slots: Mutex::new(faults.iter().map(|_| Slot::default()).collect()),
        corrupted: Mutex::new(Vec::new()),
        until_end: Mutex::new(Vec::new()),
    };
    let (abort_tx, abort_rx) = watch::channel(false);
    let injector = futures::future::join_all(
        faults
            .iter()
            .enumerate()
            .map(|(ix, (at, f))| run_fault(ix, *at, f, ctx, t0, &shared, abort_rx.clone())),
    );
    let mut aborted: Option<String> = None;
    let observer = async {
        let planned_end = s.injection_end().as_secs_f64();
        let timeout = s.timeout().as_secs_f64();
        let grace = 5.0_f64.min(timeout);
        let settle = s.slo.settle().as_secs_f64();
        loop {
            tokio::time::sleep(s.poll()).await;
            let t = mon.observe().await;
            progress.event(Event::Tick {
                name: &s.name,
                t,
                planned: (s.injection_end() + s.slo.max_recovery).as_secs_f64(),
                steady: mon.steady_ok(),
            });
            let facts = Facts {
                files_restored: files_restored(&shared, ctx.paths.root()),
            };
            let (all_done, done_at, records) = {
                let mut slots = shared.slots.lock();
                for (i, slot) in slots.iter_mut().enumerate() {
                    tell(s, &mon, faults[i].1, slot, progress);
                }
                let done_at = slots
                    .iter()
                    .filter_map(|x| x.ended_at)
                    .fold(planned_end, f64::max);
                let records: Vec<FaultRecord> = faults
                    .iter()
                    .zip(slots.iter())
                    .map(|((_, f), sl)| record_of(f, sl))
                    .collect();
                (slots.iter().all(|x| x.done), done_at, records)
            };
            for rule in &s.abort {
                let f = mon.failing_for(&rule.probe);
                if f >= rule.failing_for.as_secs_f64() {
                    aborted = Some(format!(
                        "{} failed for {f:.1}s (bound {:?})",
                        rule.probe.label(),
                        rule.failing_for
                    ));
                }
            }
            if aborted.is_some() {
                let _ = abort_tx.send(true);
                break;
            }
            if t > done_at.max(planned_end) + timeout {
                let _ = abort_tx.send(true);
                break;
            }
            if !all_done {
                continue;
            }
            let tl = &mon.timeline;
            let first = records
                .iter()
                .map(|r| r.injected_at)
                .fold(f64::INFINITY, f64::min);
            let noticed = records.iter().all(|r| {
                r.error.is_some()
                    || matches!(r.class, FaultClass::Other | FaultClass::Operator)
                    || measure::detection(tl, r).is_some()
                    || t - r.ended_at >= grace
            });
            let expected = s
                .expect
                .iter()
                .all(|e| measure::expectation_status(e, tl, &facts, first, t).0 != Check::Pending);
            if mon.steady_for() >= settle && noticed && expected {
                break;
            }
        }
    };
    tokio::join!(injector, observer);
    // Clean up: ports and other held guards, files the system did not restore, kernels
    // a fault left down.
    shared.until_end.lock().clear();
    let facts = Facts {
        files_restored: files_restored(&shared, ctx.paths.root()),
    };
    for mut c in shared.corrupted.lock().drain(..) {
        match c.undo() {
            Ok(true) => report.cleanup.push(format!(
                "put back {} (the system had not restored it)",
                c.path().display()
            )),
            Ok(false) => {}
            Err(e) => report
                .cleanup
                .push(format!("cannot put back {}: {e}", c.path().display())),
        }
    }
    restart_left_down(s, ctx, report).await;
    let slots = shared.slots.lock();
    let records: Vec<FaultRecord> = faults
        .iter()
        .zip(slots.iter())
        .map(|((_, f), sl)| record_of(f, sl))
        .collect();
    report.assessment = measure::assess(
        &s.slo,
        &s.expect,
        &records,
        &mon.timeline,
        &facts,
        aborted.as_deref(),
    );
    report.aborted = aborted;
    report.timeline = mon.timeline;
}

/// Emits the injected/detected/recovered events of one fault, once each.
fn tell(s: &Scenario, mon: &Monitor, f: &Fault, slot: &mut Slot, progress: &mut dyn Progress) {
    let label = f.kind.label();
    if slot.told == 0 {
        if let Some(e) = &slot.error {
            slot.told = 3;
            progress.event(Event::Fault {
                name: &s.name,
                t: mon.now(),
                what: "failed",
                text: &format!("{label}: {e}"),
            });
            return;
        }
        if let Some(t) = slot.injected_at {
            slot.told = 1;
            progress.event(Event::Fault {
                name: &s.name,
                t,
                what: "injected",
                text: &label,
            });
        }
    }
    if slot.told == 1 {
        let rec = record_of(f, slot);
        if let Some((t, by)) = measure::detection(&mon.timeline, &rec) {
            slot.told = 2;
            progress.event(Event::Fault {
                name: &s.name,
                t,
                what: "detected",
                text: &format!("{label} ({by})"),
            });
        }
    }
    let waits_for_detection =
        !matches!(class_of(&f.kind), FaultClass::Other | FaultClass::Operator);
    let settled = mon.steady_for() >= s.slo.settle().as_secs_f64();
    if (slot.told == 2 || (slot.told == 1 && !waits_for_detection)) && slot.done && settled {
        slot.told = 3;
        progress.event(Event::Fault {
            name: &s.name,
            t: mon.now(),
            what: "recovered",
            text: &label,
        });
    }
}

/// Restarts the kernels a fault left failed or stopped (the restart-fails scenario
/// leaves one down on purpose).
async fn restart_left_down(s: &Scenario, ctx: &Ctx, report: &mut ScenarioReport) {
    let mut names: Vec<&str> = s.all_faults().filter_map(|f| f.kind.component()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return;
    }
    let Ok(resp) = ctx.client.get("/api/kernels").await else {
        return;
    };
    let Some(kernels) = resp
        .json()
        .and_then(|v| super::monitor::parse_kernels(&v).ok())
    else {
        return;
    };
    for k in kernels.iter().filter(|k| names.contains(&k.name.as_str())) {
        if matches!(k.state.as_str(), "failed" | "stopped") {
            let path = format!("/api/kernels/{}/restart", k.name);
            let note = match ctx.client.post(&path, &serde_json::json!({})).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    format!("restarted {} (it was {})", k.name, k.state)
                }
                Ok(r) => format!("cannot restart {}: {} answered {}", k.name, path, r.status),
                Err(e) => format!("cannot restart {}: {e}", k.name),
            };
            report.cleanup.push(note);
        }
    }
}
