//! Incident summaries: counts by status and MTTR percentiles (pure functions).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::{Incident, IncidentStatus};

/// Incidents by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Open.
    pub open: u64,
    /// Mitigating.
    pub mitigating: u64,
    /// Verifying.
    #[serde(default)]
    pub verifying: u64,
    /// Resolved.
    pub resolved: u64,
    /// Escalated.
    pub escalated: u64,
    /// Failed.
    pub failed: u64,
}

impl StatusCounts {
    fn slot(&mut self, s: IncidentStatus) -> &mut u64 {
        match s {
            IncidentStatus::Open => &mut self.open,
            IncidentStatus::Mitigating => &mut self.mitigating,
            IncidentStatus::Verifying => &mut self.verifying,
            IncidentStatus::Resolved => &mut self.resolved,
            IncidentStatus::Escalated => &mut self.escalated,
            IncidentStatus::Failed => &mut self.failed,
        }
    }

    /// Counts one incident in status `s`.
    pub fn add(&mut self, s: IncidentStatus) {
        *self.slot(s) += 1;
    }

    /// Moves one incident from status `from` to `to`.
    pub fn moved(&mut self, from: IncidentStatus, to: IncidentStatus) {
        let f = self.slot(from);
        *f = f.saturating_sub(1);
        *self.slot(to) += 1;
    }

    /// All incidents.
    pub fn total(&self) -> u64 {
        self.open + self.mitigating + self.verifying + self.resolved + self.escalated + self.failed
    }
}

/// Count by status and MTTR percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// All incidents.
    pub total: u64,
    /// By status.
    pub by_status: StatusCounts,
    /// Incidents with an MTTR (closed ones).
    pub mttr_count: u64,
    /// Median MTTR, seconds.
    pub mttr_p50_seconds: Option<f64>,
    /// 95th percentile MTTR, seconds.
    pub mttr_p95_seconds: Option<f64>,
    /// Largest MTTR, seconds.
    pub mttr_max_seconds: Option<f64>,
}

/// The `q` quantile (0..=1) of `sorted` by nearest rank; None when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Builds a summary from counts and the MTTRs (any order).
pub fn build(by_status: StatusCounts, mttrs: &[f64]) -> Summary {
    let mut sorted: Vec<f64> = mttrs.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    Summary {
        total: by_status.total(),
        by_status,
        mttr_count: sorted.len() as u64,
        mttr_p50_seconds: percentile(&sorted, 0.5),
        mttr_p95_seconds: percentile(&sorted, 0.95),
        mttr_max_seconds: sorted.last().copied(),
    }
}

/// Summarises a set of (folded) incidents.
pub fn summarize<'a>(incidents: impl IntoIterator<Item = &'a Incident>) -> Summary {
    let mut counts = StatusCounts::default();
    let mut mttrs = Vec::new();
    for i in incidents {
        counts.add(i.status);
        if let Some(m) = i.mttr_seconds {
            mttrs.push(m);
        }
    }
    build(counts, &mttrs)
}

/// A duration in seconds for humans: `0.42s`, `12.30s`, `4m05s`, `2h07m`.
pub fn format_seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".to_owned();
    }
    if s < 60.0 {
        return format!("{s:.2}s");
    }
    let whole = s.round() as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.by_status;
        write!(
            f,
            "{} incidents ({} open, {} mitigating, {} resolved, {} escalated, {} failed)",
            self.total, c.open, c.mitigating, c.resolved, c.escalated, c.failed
        )?;
        match (
            self.mttr_p50_seconds,
            self.mttr_p95_seconds,
            self.mttr_max_seconds,
        ) {
            (Some(p50), Some(p95), Some(max)) => write!(
                f,
                "; MTTR p50 {}, p95 {}, max {} (over {} closed)",
                format_seconds(p50),
                format_seconds(p95),
                format_seconds(max),
                self.mttr_count
            ),
            _ => f.write_str("; MTTR: none closed yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.95), Some(95.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 0.5), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_seconds(0.4219), "0.42s");
        assert_eq!(format_seconds(245.0), "4m05s");
        assert_eq!(format_seconds(7620.0), "2h07m");
        assert_eq!(format_seconds(f64::NAN), "-");
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_and_within_the_data(v in prop::collection::vec(0.0f64..1e6, 1..200)) {
            let s = build(StatusCounts::default(), &v);
            let (p50, p95, max) = (
                s.mttr_p50_seconds.expect("p50"),
                s.mttr_p95_seconds.expect("p95"),
                s.mttr_max_seconds.expect("max"),
            );
            prop_assert!(p50 <= p95 && p95 <= max);
            prop_assert!(v.contains(&p50) && v.contains(&p95));
            prop_assert_eq!(max, v.iter().copied().fold(f64::MIN, f64::max));
        }
    }
}
