//! The summary table printed after a run (and written as `summary.txt`).

use std::fmt::Write as _;

use super::{RunReport, ScenarioReport};

fn secs(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 10.0 => format!("{s:.3}s"),
        Some(s) => format!("{s:.1}s"),
        None => "-".to_owned(),
    }
}

/// The table: one row per fault, a verdict line per scenario, and why a scenario
/// failed.
pub fn summary_table(r: &RunReport) -> String {
    let mut out = String::new();
    let w = r
        .scenarios
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    let _ = writeln!(
        out,
        "{:<w$} {:<34} {:>9} {:>9} {:>7} {:>5} {:>5}",
        "SCENARIO", "FAULT", "MTTD", "RECOVERY", "SLO", "MET", "SCORE"
    );
    for s in &r.scenarios {
        scenario_rows(&mut out, s, w);
    }
    let passed = r.scenarios.iter().filter(|s| s.passed()).count();
    let _ = writeln!(out, "{passed}/{} scenarios passed", r.scenarios.len());
    out
}

fn scenario_rows(out: &mut String, s: &ScenarioReport, w: usize) {
    let a = &s.assessment;
    let slo = format!("{}s", s.max_recovery_s);
    let mut name = s.name.as_str();
    for f in &a.faults {
        let label: String = f.record.label.chars().take(34).collect();
        let _ = writeln!(
            out,
            "{:<w$} {:<34} {:>9} {:>9} {:>7} {:>5} {:>5}",
            name,
            label,
            secs(f.mttd),
            secs(f.recovery),
            slo,
            if f.slo_met { "yes" } else { "NO" },
            f.score
        );
        name = "";
    }
    if a.faults.is_empty() {
        let _ = writeln!(out, "{:<w$} (no fault injected)", s.name);
    }
    let incidents: Vec<String> = s
        .timeline
        .incidents
        .iter()
        .map(|i| match &i.playbook {
            Some(p) => format!("{} -> {p} ({})", i.trigger, i.status),
            None => format!("{} ({})", i.trigger, i.status),
        })
        .collect();
    let _ = writeln!(
        out,
        "{:<w$} => {}  score {}  recovery {}  steady state {}  incidents: {}",
        "",
        if s.passed() { "PASS" } else { "FAIL" },
        a.score,
        secs(a.recovery),
        if a.steady_restored {
            "restored"
        } else {
            "NOT restored"
        },
        if incidents.is_empty() {
            "none".to_owned()
        } else {
            incidents.join(", ")
        }
    );
    if let Some(e) = &s.error {
        let _ = writeln!(out, "{:<w$}    error: {e}", "");
    }
    for r in &a.reasons {
        let _ = writeln!(out, "{:<w$}    - {r}", "");
    }
}
