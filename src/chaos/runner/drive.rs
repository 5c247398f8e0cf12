//! Driving one scenario: wait for the steady state, inject on schedule while
//! observing, stop when the system is back (or a bound passes, or an abort condition
//! holds), clean up what the faults left, and judge.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::faults::{class_of, files_restored, record_of, run_fault, Shared, Slot};
use crate::chaos::inject::Ctx;
use crate::chaos::measure::{self, Check, Facts, FaultClass, FaultRecord};
use crate::chaos::monitor::{self, Monitor};
use crate::chaos::progress::{Event, Progress};
use crate::chaos::report::ScenarioReport;
use crate::chaos::scenario::{Expectation, Fault, Probe, Scenario};

/// Injects and observes; fills `report`.
pub(super) async fn drive(
    s: &Scenario,
    ctx: &Ctx,
    report: &mut ScenarioReport,
    progress: &mut dyn Progress,
) {
    let mut extra: Vec<_> = s.abort.iter().map(|a| a.probe.clone()).collect();
    extra.extend(s.before.iter().cloned());
    if s.expect.contains(&Expectation::NoOpenIncidentsAtEnd) {
        extra.push(Probe::NoOpenIncidents);
    }
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
            let facts = Facts {
                files_restored: files_restored(&shared, ctx.paths.root()),
                faults_ended_at: ended_at(all_done, &records),
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
    let facts = {
        let slots = shared.slots.lock();
        let records: Vec<FaultRecord> = faults
            .iter()
            .zip(slots.iter())
            .map(|((_, f), sl)| record_of(f, sl))
            .collect();
        Facts {
            files_restored: files_restored(&shared, ctx.paths.root()),
            faults_ended_at: ended_at(slots.iter().all(|x| x.done), &records),
        }
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

/// When the last fault ended, once all have.
fn ended_at(all_done: bool, records: &[FaultRecord]) -> Option<f64> {
    all_done.then(|| {
        records
            .iter()
            .map(|r| r.ended_at)
            .fold(f64::NEG_INFINITY, f64::max)
    })
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
    let Some(kernels) = resp.json().and_then(|v| monitor::parse_kernels(&v).ok()) else {
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
