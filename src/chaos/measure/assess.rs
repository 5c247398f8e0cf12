//! The verdict: each fault's outcome (detection, recovery, SLO, score) and the
//! scenario's assessment, with the reasons it did not pass.

use serde::{Deserialize, Serialize};

use super::expect::{expectation_status, Check, ExpectationResult};
use super::timing::{detection, recovered_at, recovery_start, score, steady_ok_at};
use super::{Facts, FaultClass, FaultRecord, Timeline};
use crate::chaos::scenario::{Expectation, Slo};

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
