//! A fault's timing read off the timeline: when the system noticed it (its incident,
//! a restart of its kernel, a new pid), when the steady state came back to stay, and
//! the score of that recovery; and the lookups on the timeline that expectations
//! share.

use super::{FaultClass, FaultRecord, ProbeChange, Timeline};

fn at_or_before<T>(items: &[T], t: f64, time: impl Fn(&T) -> f64) -> Option<&T> {
    let n = items.partition_point(|x| time(x) <= t);
    n.checked_sub(1).and_then(|i| items.get(i))
}

/// Whether the steady state held at `t` (as of the last change at or before it).
pub fn steady_ok_at(tl: &Timeline, t: f64) -> bool {
    at_or_before(&tl.steady, t, |c| c.t).is_some_and(|c| c.ok)
}

pub(super) fn probe_ok_at(changes: &[ProbeChange], t: f64) -> Option<bool> {
    at_or_before(changes, t, |c| c.t).map(|c| c.ok)
}

pub(super) fn kernel_disturbed(
    tl: &Timeline,
    kernel: &str,
    from: f64,
    restarts_only: bool,
) -> Option<f64> {
    let mut last: Option<u64> = None;
    for e in tl.kernels.iter().filter(|e| e.kernel == kernel) {
        if e.t >= from {
            let restarted = last.is_some_and(|r| e.restarts > r);
            // States only the supervisor or the heartbeat monitor set: the system is
            // acting. `stopped` is what a kill leaves, not a sign anyone noticed.
            let acting = matches!(
                e.state.as_str(),
                "restarting" | "starting" | "failed" | "degraded"
            );
            if restarted || (!restarts_only && acting) {
                return Some(e.t);
            }
        }
        last = Some(e.restarts);
    }
    None
}

pub(super) fn pid_changed(changes: &[super::PidChange], from: f64) -> Option<(f64, u32)> {
    let mut last: Option<u32> = None;
    for c in changes {
        if c.t >= from {
            if let (Some(new), Some(old)) = (c.pid, last) {
                if new != old {
                    return Some((c.t, new));
                }
            }
        }
        if c.pid.is_some() {
            last = c.pid;
        }
    }
    None
}

/// When and how the system noticed a fault: the earliest of its incident, a restart
/// of its kernel seen in `/api/kernels`, a new serve or watchdog pid.
pub fn detection(tl: &Timeline, f: &FaultRecord) -> Option<(f64, String)> {
    let from = f.injected_at;
    let incident = |component: Option<&str>| {
        tl.incidents
            .iter()
            .filter(|i| i.opened >= from && component.is_none_or(|c| i.component == c))
            .min_by(|a, b| a.opened.total_cmp(&b.opened))
            .map(|i| (i.opened, format!("incident {} ({})", i.id, i.trigger)))
    };
    let mut found: Vec<(f64, String)> = Vec::new();
    match &f.class {
        FaultClass::Kernel(k) => {
            found.extend(incident(Some(k)));
            found.extend(
                kernel_disturbed(tl, k, from, false)
                    .map(|t| (t, "restart seen in /api/kernels".to_owned())),
            );
        }
        FaultClass::Serve => {
            found.extend(incident(None));
            found.extend(
                pid_changed(&tl.serve_pids, from).map(|(t, p)| (t, format!("new serve pid {p}"))),
            );
        }
        FaultClass::Watchdog => found.extend(
            pid_changed(&tl.watchdog_pids, from).map(|(t, p)| (t, format!("new watchdog pid {p}"))),
        ),
        FaultClass::Other => found.extend(incident(None)),
        FaultClass::Operator => {}
    }
    found.into_iter().min_by(|a, b| a.0.total_cmp(&b.0))
}

/// From when recovery is looked for: after the fault ended and was noticed (only
/// noticed, for a fault the system routes around while it holds).
pub fn recovery_start(f: &FaultRecord, detected_at: Option<f64>) -> f64 {
    let end = if f.heals_during {
        f.injected_at
    } else {
        f.ended_at
    };
    f.injected_at
        .max(end)
        .max(detected_at.unwrap_or(f.injected_at))
}

/// The first observation at or after `start` from which the steady state held for at
/// least `settle` (or until the end of observation): a steady state that comes back
/// only to break again at once is not a recovery.
pub fn recovered_at(tl: &Timeline, start: f64, settle: f64) -> Option<f64> {
    let first = if tl.samples.is_empty() {
        start
    } else {
        let i = tl.samples.partition_point(|&s| s < start);
        *tl.samples.get(i)?
    };
    let mut candidates = Vec::new();
    if steady_ok_at(tl, first) {
        candidates.push(first);
    }
    candidates.extend(
        tl.steady
            .iter()
            .filter(|c| c.ok && c.t > first)
            .map(|c| c.t),
    );
    candidates.into_iter().find(|&c| {
        tl.steady
            .iter()
            .find(|x| x.t > c && !x.ok)
            .is_none_or(|broken| broken.t - c >= settle)
    })
}

/// The score of one recovery: 100 for an instant one, 50 at the SLO, falling below 50
/// past it (50 × SLO / recovery), 0 when the steady state never came back; 20 less when
/// detection missed its objective.
pub fn score(recovery: Option<f64>, max_recovery: f64, detection_met: bool) -> u8 {
    let Some(r) = recovery else { return 0 };
    let q = r.max(0.0) / max_recovery.max(f64::EPSILON);
    let mut s = if q <= 1.0 { 100.0 - 50.0 * q } else { 50.0 / q };
    if !detection_met {
        s -= 20.0;
    }
    s.round().clamp(0.0, 100.0) as u8
}
