//! Fault scheduling: each fault injected at its offset (and repeated), held for its
//! duration, and what became of it (when it was injected and ended, its error, the
//! files it corrupted) shared with the observer in `drive`.

use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::chaos::guard::Corrupted;
use crate::chaos::inject::{inject_once, Ctx, Held};
use crate::chaos::measure::{FaultClass, FaultRecord};
use crate::chaos::scenario::{Fault, FaultKind, Process};

/// Which part of the system a fault strikes, which says how its detection is judged.
pub(super) fn class_of(kind: &FaultKind) -> FaultClass {
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

/// One fault's progress, shared between its injecting task and the observer.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) injected_at: Option<f64>,
    pub(super) ended_at: Option<f64>,
    pub(super) error: Option<String>,
    pub(super) notes: Vec<String>,
    pub(super) done: bool,
    pub(super) told: u8,
}

/// What the injecting tasks share with the observer: every fault's slot, the files
/// corrupted so far, and the guards held until the scenario ends.
pub(super) struct Shared {
    pub(super) slots: Mutex<Vec<Slot>>,
    pub(super) corrupted: Mutex<Vec<Corrupted>>,
    pub(super) until_end: Mutex<Vec<Held>>,
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

pub(super) async fn run_fault(
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

pub(super) fn record_of(fault: &Fault, slot: &Slot) -> FaultRecord {
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
pub(super) fn files_restored(shared: &Shared, state: &Path) -> Option<bool> {
    let snapshots = state.join("snapshots");
    let c = shared.corrupted.lock();
    let live: Vec<&Corrupted> = c
        .iter()
        .filter(|c| !c.path().starts_with(&snapshots))
        .collect();
    (!live.is_empty()).then(|| live.iter().all(|c| c.restored()))
}
