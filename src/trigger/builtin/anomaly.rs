//! `event_anomaly`: error events per bucket (a minute by default) above a baseline, an
//! EWMA of past buckets times a factor, with a floor → `run_diagnostics`.

use std::collections::{BTreeMap, VecDeque};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::event_component;
use crate::bus::Event;
use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::time::mono_ms;
use crate::trigger::config::EventAnomalyConfig;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// What one observation of the error rate found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Events in the last bucket.
    pub rate: u64,
    /// The rate above which it is a burst.
    pub threshold: f64,
    /// The baseline (EWMA of past buckets), once there is one.
    pub baseline: Option<f64>,
    /// Whether the rate is above the threshold.
    pub burst: bool,
}

/// A sliding count of events over one bucket, and an EWMA baseline of past buckets.
/// A bursting bucket is folded into the baseline at most at the threshold, so a burst
/// raises the baseline slowly and a lasting new rate becomes normal only gradually.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstDetector {
    bucket_ms: u64,
    alpha: f64,
    factor: f64,
    floor: f64,
    recent: VecDeque<(u64, u64)>,
    baseline: Option<f64>,
    last_fold: Option<u64>,
}

impl BurstDetector {
    /// A detector counting over `bucket_ms`, with EWMA weight `alpha`, burst `factor`
    /// and `floor`.
    pub fn new(bucket_ms: u64, alpha: f64, factor: f64, floor: u64) -> BurstDetector {
        BurstDetector {
            bucket_ms: bucket_ms.max(1),
            alpha: alpha.clamp(0.0, 1.0),
            factor: factor.max(1.0),
            floor: floor as f64,
            recent: VecDeque::new(),
            baseline: None,
            last_fold: None,
        }
    }

    /// Adds `events` counted up to `now_ms` and judges the rate.
    pub fn observe(&mut self, now_ms: u64, events: u64) -> Burst {
        self.recent.push_back((now_ms, events));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now_ms.saturating_sub(*t) >= self.bucket_ms)
        {
            self.recent.pop_front();
        }
        let rate: u64 = self.recent.iter().map(|(_, n)| n).sum();
        let threshold = self.floor.max(self.baseline.unwrap_or(0.0) * self.factor);
        let last = *self.last_fold.get_or_insert(now_ms);
        if now_ms.saturating_sub(last) >= self.bucket_ms {
            let x = (rate as f64).min(threshold);
            self.baseline = Some(match self.baseline {
                None => x,
                Some(b) => self.alpha * x + (1.0 - self.alpha) * b,
            });
            self.last_fold = Some(now_ms);
        }
        Burst {
            rate,
            threshold,
            baseline: self.baseline,
            burst: rate as f64 > threshold,
        }
    }
}

/// `event_anomaly`: counts the configured error topics.
pub struct EventAnomaly {
    cfg: EventAnomalyConfig,
    detector: BurstDetector,
    pending: u64,
    by_topic: BTreeMap<&'static str, u64>,
    by_component: BTreeMap<String, u64>,
    last: Option<Burst>,
}

impl EventAnomaly {
    /// The trigger with its settings.
    pub fn new(cfg: EventAnomalyConfig) -> EventAnomaly {
        let bucket_ms = u64::try_from(cfg.bucket.as_millis()).unwrap_or(u64::MAX);
        EventAnomaly {
            detector: BurstDetector::new(bucket_ms, cfg.alpha, cfg.factor, cfg.floor),
            cfg,
            pending: 0,
            by_topic: BTreeMap::new(),
            by_component: BTreeMap::new(),
            last: None,
        }
    }
}

#[async_trait]
impl Trigger for EventAnomaly {
    fn subscriptions(&self) -> Vec<String> {
        self.cfg.topics.clone()
    }

    fn on_event(&mut self, event: &Event, _ctx: &KernelContext) {
        self.pending += 1;
        *self.by_topic.entry(event.topic.as_str()).or_default() += 1;
        if let Some(c) = event_component(event) {
            if self.by_component.len() < 64 || self.by_component.contains_key(&c) {
                *self.by_component.entry(c).or_default() += 1;
            }
        }
    }

    async fn check(&mut self, _ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let b = self
            .detector
            .observe(mono_ms(), std::mem::take(&mut self.pending));
        self.last = Some(b);
        if !b.burst {
            self.by_topic.clear();
            self.by_component.clear();
            return Ok(Vec::new());
        }
        let per = self.cfg.bucket.as_secs_f64();
        Ok(vec![Finding::Holds(
            Alert::new(
                Level::Incident,
                "event_anomaly",
                "system",
                "error_burst",
                Severity::Medium,
                Some(self.cfg.playbook_or("run_diagnostics")),
                format!(
                    "{} error events in the last {per:.0} s, above the usual {:.1}",
                    b.rate,
                    b.baseline.unwrap_or(0.0)
                ),
            )
            .details(json!({
                "events": b.rate,
                "bucket_s": per,
                "threshold": b.threshold,
                "baseline": b.baseline,
                "by_topic": self.by_topic,
                "by_component": self.by_component,
            })),
        )])
    }

    fn stats(&self) -> Value {
        json!({
            "rate": self.last.map(|b| b.rate),
            "threshold": self.last.map(|b| b.threshold),
            "baseline": self.last.and_then(|b| b.baseline),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_over_a_quiet_baseline_is_seen() {
        let mut d = BurstDetector::new(60_000, 0.3, 3.0, 10);
        for i in 0..120u64 {
            assert!(!d.observe(i * 5_000, i % 2).burst);
        }
        let b = d.observe(600_000, 50);
        assert!(b.burst, "{b:?}");
        // The threshold was 3 × the baseline of 6 per minute; the burst bucket is folded
        // in at most at that threshold.
        assert!((b.threshold - 18.0).abs() < 3.0, "{b:?}");
        assert!(
            b.baseline.is_some_and(|x| x <= 0.3 * 18.0 + 0.7 * 7.0),
            "{b:?}"
        );
    }

    proptest! {
        #[test]
        fn rates_at_or_below_the_floor_never_burst(counts in proptest::collection::vec(0u64..3, 1..200)) {
            // 12 checks per bucket of at most 2 events each never exceed a floor of 24.
            let mut d = BurstDetector::new(60_000, 0.3, 3.0, 24);
            for (i, n) in counts.into_iter().enumerate() {
                prop_assert!(!d.observe(i as u64 * 5_000, n).burst);
            }
        }

        #[test]
        fn a_lasting_rate_becomes_the_baseline(per_check in 1u64..1000) {
            let mut d = BurstDetector::new(60_000, 0.3, 3.0, 10);
            let mut last = None;
            for i in 0..2_000u64 {
                last = Some(d.observe(i * 5_000, per_check));
            }
            let b = last.expect("observed");
            prop_assert!(!b.burst, "{:?}", b);
            prop_assert!(b.threshold >= 10.0);
        }
    }
}
