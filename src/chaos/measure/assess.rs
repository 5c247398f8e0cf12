//! The rules: detection, recovery, expectations, verdict and score.

use serde::{Deserialize, Serialize};

use super::{Facts, FaultClass, FaultRecord, ProbeChange, Timeline};
use crate::chaos::scenario::{Expectation, Slo};

/// Whether an expectation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// It holds.
    Met,
    /// It does not, and cannot any more.
    Unmet,
    /// Not yet seen; it may still happen.
    Pending,
}

/// An expectation with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// Its label.
    pub label: String,
    /// The result.
    pub status: Check,
    /// What was seen.
    pub detail: String,
}

/// One fault's measurements and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    /// The fault as carried out.
    #[serde(flatten)]
    pub record: FaultRecord,
    /// When the system noticed it.
    pub detected_at: Option<f64>,
    /// How (`incident inc_... (heartbeat_failure)`, `restart seen in /api/kernels`).
    pub detected_by: Option<String>,
    /// Time to detect, seconds.
    pub mttd: Option<f64>,
    /// When the steady state held again.
    pub recovered_at: Option<f64>,
    /// Time from injection to recovery, seconds.
    pub recovery: Option<f64>,
    /// Incidents opened for it (ids).
    pub incidents: Vec<String>,
    /// Whether detection met `max_detection` (true when none is set).
    pub detection_met: bool,
    /// Whether it met the SLO.
    pub slo_met: bool,
    /// 0-100.
    pub score: u8,
}

/// A scenario's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Per fault.
    pub faults: Vec<FaultOutcome>,
    /// Per expectation.
    pub expectations: Vec<ExpectationResult>,
    /// Whether the steady state held at the end.
    pub steady_restored: bool,
    /// From the first injection to the last fault's recovery, seconds.
    pub recovery: Option<f64>,
    /// Whether every fault met the SLO.
    pub slo_met: bool,
    /// SLO met, steady state back, every expectation met, not aborted.
    pub passed: bool,
    /// 0-100.
    pub score: u8,
    /// Why it did not pass.
    pub reasons: Vec<String>,
}

fn at_or_before<T>(items: &[T], t: f64, time: impl Fn(&T) -> f64) -> Option<&T> {
    let n = items.partition_point(|x| time(x) <= t);
    n.checked_sub(1).and_then(|i| items.get(i))
}

/// Whether the steady state held at `t` (as of the last change at or before it).
pub fn steady_ok_at(tl: &Timeline, t: f64) -> bool {
    at_or_before(&tl.steady, t, |c| c.t).is_some_and(|c| c.ok)
}

fn probe_ok_at(changes: &[ProbeChange], t: f64) -> Option<bool> {
    at_or_before(changes, t, |c| c.t).map(|c| c.ok)
}

fn kernel_disturbed(tl: &Timeline, kernel: &str, from: f64, restarts_only: bool) -> Option<f64> {
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

fn pid_changed(changes: &[super::PidChange], from: f64) -> Option<(f64, u32)> {
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

/// The status of one expectation given what was seen up to `now` (the last
/// observation); the first injection was at `first`.
pub fn expectation_status(
    e: &Expectation,
    tl: &Timeline,
    facts: &Facts,
    first: f64,
    now: f64,
) -> (Check, String) {
    let pending = |what: &str| (Check::Pending, format!("{what} not seen"));
    match e {
        Expectation::Incident(m) => {
            let hit = tl.incidents.iter().find(|i| {
                i.opened >= first
                    && m.trigger.as_ref().is_none_or(|v| *v == i.trigger)
                    && m.component.as_ref().is_none_or(|v| *v == i.component)
                    && m.failure_mode.as_ref().is_none_or(|v| *v == i.failure_mode)
                    && m.playbook
                        .as_ref()
                        .is_none_or(|v| i.playbook.as_ref() == Some(v))
                    && (!m.resolved || i.status == "resolved")
            });
            match hit {
                Some(i) => (
                    Check::Met,
                    format!("{} at {:.3}s ({})", i.id, i.opened, i.status),
                ),
                None => pending("a matching incident"),
            }
        }
        Expectation::KernelRestarted(k) => match kernel_disturbed(tl, k, first, true) {
            Some(t) => (Check::Met, format!("restart seen at {t:.3}s")),
            None => pending("a restart"),
        },
        Expectation::KernelState { kernel, state } => {
            let last = tl.kernels.iter().rev().find(|e| e.kernel == *kernel);
            match last {
                Some(e) if e.state == *state && e.t >= first => {
                    (Check::Met, format!("{state} since {:.3}s", e.t))
                }
                Some(e) => (Check::Pending, format!("{} is {}", kernel, e.state)),
                None => pending("the kernel"),
            }
        }
        Expectation::ServeRestarted => match pid_changed(&tl.serve_pids, first) {
            Some((t, p)) => (Check::Met, format!("new serve pid {p} at {t:.3}s")),
            None => pending("a new serve pid"),
        },
        Expectation::ServeDown { from, to } => {
            let (from, to) = (from.as_secs_f64(), to.as_secs_f64());
            let health = tl.probes.get("health_ok").map(Vec::as_slice).unwrap_or(&[]);
            let up_at_start = probe_ok_at(health, from);
            let up_inside = health.iter().find(|c| c.t > from && c.t <= to && c.ok);
            if up_at_start == Some(true) {
                (
                    Check::Unmet,
                    format!("serve answered /health at {from:.3}s"),
                )
            } else if let Some(c) = up_inside {
                (
                    Check::Unmet,
                    format!("serve answered /health at {:.3}s", c.t),
                )
            } else if now < to || up_at_start.is_none() {
                (Check::Pending, "window not over".to_owned())
            } else {
                (Check::Met, format!("no answer from {from:.3}s to {to:.3}s"))
            }
        }
        Expectation::FilesRestored => match facts.files_restored {
            Some(true) => (
                Check::Met,
                "every corrupted file has its old content".to_owned(),
            ),
            Some(false) => pending("the restore"),
            None => (
                Check::Unmet,
                "no file outside snapshots/ was corrupted".to_owned(),
            ),
        },
        Expectation::Alert(sev) => {
            match tl
                .alerts
                .iter()
                .find(|a| a.t >= first && a.severity == *sev)
            {
                Some(a) => (Check::Met, format!("{} at {:.3}s", a.file, a.t)),
                None => pending("an alert"),
            }
        }
    }
}

/// The verdict of a finished scenario.
pub fn assess(
    slo: &Slo,
    expect: &[Expectation],
    faults: &[FaultRecord],
    tl: &Timeline,
    facts: &Facts,
    aborted: Option<&str>,
) -> Assessment {
    let mut reasons = Vec::new();
    if let Some(why) = aborted {
        reasons.push(format!("aborted: {why}"));
    }
    let outcomes: Vec<FaultOutcome> = faults
        .iter()
        .map(|f| fault_outcome(slo, f, tl, &mut reasons))
        .collect();
    let first = faults
        .iter()
        .map(|f| f.injected_at)
        .min_by(f64::total_cmp)
        .unwrap_or(0.0);
    let expectations: Vec<ExpectationResult> = expect
        .iter()
        .map(|e| {
            let (mut status, detail) = expectation_status(e, tl, facts, first, tl.end);
            if status == Check::Pending {
                status = Check::Unmet;
            }
            if status == Check::Unmet {
                reasons.push(format!("expectation {} unmet: {detail}", e.label()));
            }
            ExpectationResult {
                label: e.label(),
                status,
                detail,
            }
        })
        .collect();
    let steady_restored = steady_ok_at(tl, tl.end);
    if !steady_restored {
        let failing = tl
            .steady
            .last()
            .map(|c| c.failing.join("; "))
            .unwrap_or_else(|| "never observed".to_owned());
        reasons.push(format!("steady state not restored: {failing}"));
    }
    let recovery = outcomes
        .iter()
        .map(|o| o.recovered_at)
        .collect::<Option<Vec<f64>>>()
        .and_then(|v| v.into_iter().max_by(f64::total_cmp))
        .map(|last| last - first);
    let slo_met = outcomes.iter().all(|o| o.slo_met);
    let unmet = expectations
        .iter()
        .filter(|e| e.status != Check::Met)
        .count();
    let passed = aborted.is_none() && steady_restored && slo_met && unmet == 0;
    let score = if aborted.is_some() || !steady_restored || outcomes.is_empty() {
        0
    } else {
        let mean = outcomes.iter().map(|o| f64::from(o.score)).sum::<f64>() / outcomes.len() as f64;
        (mean - 10.0 * unmet as f64).round().clamp(0.0, 100.0) as u8
    };
    Assessment {
        faults: outcomes,
        expectations,
        steady_restored,
        recovery,
        slo_met,
        passed,
        score,
        reasons,
    }
}

fn fault_outcome(
    slo: &Slo,
    f: &FaultRecord,
    tl: &Timeline,
    reasons: &mut Vec<String>,
) -> FaultOutcome {
    let max_rec = slo.max_recovery.as_secs_f64();
    if let Some(err) = &f.error {
        reasons.push(format!("{}: {err}", f.label));
        return FaultOutcome {
            record: f.clone(),
            detected_at: None,
            detected_by: None,
            mttd: None,
            recovered_at: None,
            recovery: None,
            incidents: Vec::new(),
            detection_met: false,
            slo_met: false,
            score: 0,
        };
    }
    let det = detection(tl, f);
    let detected_at = det.as_ref().map(|d| d.0);
    let mttd = detected_at.map(|t| t - f.injected_at);
    let recovered_at = recovered_at(
        tl,
        recovery_start(f, detected_at),
        slo.settle().as_secs_f64(),
    );
    let recovery = recovered_at.map(|t| t - f.injected_at);
    let detection_met = match (slo.max_detection, &f.class) {
        (None, _) | (_, FaultClass::Operator) => true,
        (Some(m), _) => mttd.is_some_and(|d| d <= m.as_secs_f64()),
    };
    if !detection_met {
        reasons.push(match mttd {
            Some(d) => format!("{}: detected in {d:.3}s, over max_detection", f.label),
            None => format!("{}: never detected", f.label),
        });
    }
    let slo_met = detection_met && recovery.is_some_and(|r| r <= max_rec);
    match recovery {
        Some(r) if r > max_rec => reasons.push(format!(
            "{}: recovered in {r:.3}s, over the SLO of {max_rec}s",
            f.label
        )),
        None => reasons.push(format!("{}: never recovered", f.label)),
        _ => {}
    }
    let until = recovered_at.unwrap_or(tl.end);
    let incidents = tl
        .incidents
        .iter()
        .filter(|i| i.opened >= f.injected_at && i.opened <= until)
        .filter(|i| match &f.class {
            FaultClass::Kernel(k) => i.component == *k,
            _ => true,
        })
        .map(|i| i.id.clone())
        .collect();
    FaultOutcome {
        record: f.clone(),
        detected_at,
        detected_by: det.map(|d| d.1),
        mttd,
        recovered_at,
        recovery,
        incidents,
        detection_met,
        slo_met,
        score: score(recovery, max_rec, detection_met),
    }
}
