//! The incidents as the API and the dashboard show them: folded by `incident_id` from
//! `incidents.jsonl`, with an MTTR summary.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::incident::{Incident, IncidentStatus};

/// Count and MTTR figures over a set of incidents.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IncidentSummary {
    /// Incidents known.
    pub total: usize,
    /// Open or mitigating.
    pub open: usize,
    /// Resolved.
    pub resolved: usize,
    /// Escalated.
    pub escalated: usize,
    /// Failed.
    pub failed: usize,
    /// Median MTTR of resolved incidents, seconds.
    pub mttr_p50_s: Option<f64>,
    /// 95th percentile MTTR, seconds.
    pub mttr_p95_s: Option<f64>,
    /// Largest MTTR, seconds.
    pub mttr_max_s: Option<f64>,
    /// Mean MTTR, seconds.
    pub mttr_mean_s: Option<f64>,
}

/// Reads `incidents.jsonl` and folds its records by `incident_id` (the last record of
/// an id wins), oldest first. Lines that do not parse (a record torn by a crash) are
/// skipped; a missing file is no incidents.
pub fn load(path: &Path) -> Vec<Incident> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => return Vec::new(),
    };
    fold(&text)
}

/// Folds JSON lines of incident records by `incident_id`, in order of first appearance.
pub fn fold(text: &str) -> Vec<Incident> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, Incident> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(inc) = serde_json::from_str::<Incident>(line) else {
            continue;
        };
        if !by_id.contains_key(&inc.incident_id) {
            order.push(inc.incident_id.clone());
        }
        by_id.insert(inc.incident_id.clone(), inc);
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

/// The nearest-rank `q` quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Counts by status and the MTTR distribution of resolved incidents.
pub fn summarize(incidents: &[Incident]) -> IncidentSummary {
    let count = |s: IncidentStatus| incidents.iter().filter(|i| i.status == s).count();
    let mut mttr: Vec<f64> = incidents
        .iter()
        .filter(|i| i.status == IncidentStatus::Resolved)
        .filter_map(|i| i.mttr_seconds)
        .filter(|m| m.is_finite())
        .collect();
    mttr.sort_by(f64::total_cmp);
    IncidentSummary {
        total: incidents.len(),
        open: incidents.iter().filter(|i| i.status.is_open()).count(),
        resolved: count(IncidentStatus::Resolved),
        escalated: count(IncidentStatus::Escalated),
        failed: count(IncidentStatus::Failed),
        mttr_p50_s: quantile(&mttr, 0.5),
        mttr_p95_s: quantile(&mttr, 0.95),
        mttr_max_s: mttr.last().copied(),
        mttr_mean_s: (!mttr.is_empty()).then(|| mttr.iter().sum::<f64>() / mttr.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str, status: &str, mttr: Option<f64>) -> String {
        json!({
            "incident_id": id, "detected_at": "2025-01-01T00:00:00.000000Z",
            "status": status, "failure_mode": "kernel_panic", "severity": "high",
            "component": "kv_store", "trigger": "heartbeat_failure",
            "mttr_seconds": mttr, "occurrences": 1
        })
        .to_string()
    }

    #[test]
    fn folds_by_id_skips_torn_lines_and_summarizes_mttr() {
        let text = [
            rec("a", "open", None),
            rec("b", "open", None),
            rec("a", "resolved", Some(2.0)),
            "{\"incident_id\": \"c\", \"detec".to_owned(),
            rec("d", "resolved", Some(4.0)),
            rec("e", "escalated", None),
        ]
        .join("\n");
        let all = fold(&text);
        let ids: Vec<_> = all.iter().map(|i| i.incident_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d", "e"]);
        let s = summarize(&all);
        assert_eq!((s.total, s.open, s.resolved, s.escalated), (4, 1, 2, 1));
        assert_eq!(s.mttr_p50_s, Some(2.0));
        assert_eq!(s.mttr_max_s, Some(4.0));
        assert_eq!(s.mttr_mean_s, Some(3.0));
        assert_eq!(summarize(&[]).mttr_p95_s, None);
    }
}
