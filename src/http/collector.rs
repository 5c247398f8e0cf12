//! Counts what the bus reports (restarts by kernel and reason, playbook runs and their
//! durations, kernel errors, events by topic) for `/metrics` and the dashboard's
//! timeline. [`Tallies::apply`] is the plain decision; [`spawn`] only feeds it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::bus::{Bus, Event, Topic};

/// The bus subscriber name of the collector.
pub const SUBSCRIBER: &str = "http_metrics";
/// Restart events kept for the timeline.
pub const TIMELINE_LEN: usize = 500;
/// Upper bounds (seconds) of the playbook-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// One restart, for the timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestartPoint {
    /// When (RFC 3339).
    pub at: String,
    /// The kernel.
    pub kernel: String,
    /// The reason.
    pub reason: String,
    /// `success`, `failed` or `max_attempts`.
    pub outcome: &'static str,
}

/// A cumulative histogram: counts per upper bound, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// Count of values ≤ each bound of [`DURATION_BUCKETS`].
    pub le: [u64; DURATION_BUCKETS.len()],
    /// Sum of values.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
}

impl Buckets {
    /// Adds one value (seconds).
    pub fn observe(&mut self, v: f64) {
        for (i, b) in DURATION_BUCKETS.iter().enumerate() {
            if v <= *b {
                self.le[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// Everything counted from bus events.
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    /// Restarts by (kernel, reason, outcome).
    pub restarts: BTreeMap<(String, String, String), u64>,
    /// Playbook runs by (playbook, outcome).
    pub playbook_runs: BTreeMap<(String, String), u64>,
    /// Playbook durations by playbook.
    pub playbook_durations: BTreeMap<String, Buckets>,
    /// `kernel.error` events by component.
    pub kernel_errors: BTreeMap<String, u64>,
    /// Events seen by topic.
    pub events: BTreeMap<String, u64>,
    /// The latest restarts, oldest first.
    pub timeline: VecDeque<RestartPoint>,
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

fn seconds(v: &Value) -> Option<f64> {
    if let Some(s) = v.get("duration_s").and_then(Value::as_f64) {
        return Some(s);
    }
    if let Some(s) = v.get("duration_secs").and_then(Value::as_f64) {
        return Some(s);
    }
    v.get("duration_ms")
        .and_then(Value::as_f64)
        .map(|ms| ms / 1000.0)
}

impl Tallies {
    /// Counts one event.
    pub fn apply(&mut self, e: &Event) {
        *self.events.entry(e.topic.as_str().to_owned()).or_insert(0) += 1;
        let component = e
            .component
            .clone()
            .or_else(|| text(&e.payload, &["kernel", "component", "child", "id"]))
            .unwrap_or_else(|| "unknown".to_owned());
        let outcome = match e.topic {
            Topic::KernelRestartSuccess => Some("success"),
            Topic::KernelRestartFailed => Some("failed"),
            Topic::KernelRestartMaxAttempts => Some("max_attempts"),
            _ => None,
        };
        if let Some(outcome) = outcome {
            let reason = text(&e.payload, &["reason"]).unwrap_or_else(|| "unknown".to_owned());
            *self
                .restarts
                .entry((component.clone(), reason.clone(), outcome.to_owned()))
                .or_insert(0) += 1;
            if self.timeline.len() == TIMELINE_LEN {
                self.timeline.pop_front();
            }
            self.timeline.push_back(RestartPoint {
                at: e.at.clone(),
                kernel: component,
                reason,
                outcome,
            });
            return;
        }
        match e.topic {
            Topic::PlaybookFinished => {
                let playbook =
                    text(&e.payload, &["playbook", "name"]).unwrap_or_else(|| "unknown".to_owned());
                let outcome = match e.payload.get("success").and_then(Value::as_bool) {
                    Some(true) => "success".to_owned(),
                    Some(false) => "failed".to_owned(),
                    None => text(&e.payload, &["status", "outcome"])
                        .unwrap_or_else(|| "unknown".to_owned()),
                };
                *self
                    .playbook_runs
                    .entry((playbook.clone(), outcome))
                    .or_insert(0) += 1;
                if let Some(s) = seconds(&e.payload) {
                    self.playbook_durations
                        .entry(playbook)
                        .or_default()
                        .observe(s);
                }
            }
            Topic::KernelError => {
                *self.kernel_errors.entry(component).or_insert(0) += 1;
            }
            _ => {}
        }
    }
}

/// The shared tallies of one HTTP server.
pub type SharedTallies = Arc<Mutex<Tallies>>;

/// Subscribes to the bus and counts every event until the task is aborted.
pub fn spawn(bus: &Bus, tallies: SharedTallies) -> tokio::task::JoinHandle<()> {
    let sub = bus.subscribe(SUBSCRIBER, &["*"]);
    tokio::spawn(async move {
        while let Some(e) = sub.recv().await {
            tallies.lock().apply(&e);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_restarts_playbooks_and_errors() {
        let mut t = Tallies::default();
        t.apply(&Event::new(
            Topic::KernelRestartSuccess,
            Some("kv"),
            json!({"reason": "panic"}),
        ));
        t.apply(&Event::new(
            Topic::KernelRestartFailed,
            None,
            json!({"kernel": "kv", "reason": "start"}),
        ));
        t.apply(&Event::new(
            Topic::PlaybookFinished,
            None,
            json!({"playbook": "restart_kernel", "success": true, "duration_ms": 300}),
        ));
        t.apply(&Event::new(Topic::KernelError, Some("w"), json!({})));
        assert_eq!(
            t.restarts[&("kv".into(), "panic".into(), "success".into())],
            1
        );
        assert_eq!(
            t.restarts[&("kv".into(), "start".into(), "failed".into())],
            1
        );
        assert_eq!(
            t.playbook_runs[&("restart_kernel".into(), "success".into())],
            1
        );
        let b = &t.playbook_durations["restart_kernel"];
        assert_eq!((b.count, b.le[2], b.le[3]), (1, 0, 1));
        assert_eq!(t.kernel_errors["w"], 1);
        assert_eq!(t.timeline.len(), 2);
        assert_eq!(t.events["kernel.restart.success"], 1);
    }

    #[test]
    fn the_timeline_is_bounded() {
        let mut t = Tallies::default();
        for _ in 0..TIMELINE_LEN + 10 {
            t.apply(&Event::new(
                Topic::KernelRestartSuccess,
                Some("k"),
                json!({}),
            ));
        }
        assert_eq!(t.timeline.len(), TIMELINE_LEN);
    }
}
