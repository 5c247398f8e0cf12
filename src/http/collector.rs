//! Counts what the bus reports (restarts by kernel and reason, playbook runs and their
//! durations, kernel errors, events by topic) for `/metrics`. [`Tallies::apply`] is the
//! plain decision; [`spawn`] only feeds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::bus::{Bus, Event, Topic};

/// The bus subscriber name of the collector.
pub const SUBSCRIBER: &str = "http_metrics";
/// Upper bounds (seconds) of the playbook-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Upper bounds (seconds) of the restart-latency histogram buckets (exit seen to
/// replacement running).
pub const RESTART_BUCKETS: [f64; 8] = [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 60.0];
/// Upper bounds (seconds) of the MTTR histogram buckets.
pub const MTTR_BUCKETS: [f64; 12] = [
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Longest restart reason kept as a label value.
const REASON_LEN: usize = 48;

/// A cumulative histogram: counts per upper bound, sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// The upper bounds.
    pub bounds: &'static [f64],
    /// Count of values ≤ each bound.
    pub le: Vec<u64>,
    /// Sum of values.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
}

impl Buckets {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            le: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one value (seconds).
    pub fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.le[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(&DURATION_BUCKETS)
    }
}

/// A restart reason as a label: its class (`panic`, `operator`, `heartbeat_timeout`,
/// the part before the first `:`), so that free-text messages do not make one series
/// each.
pub fn reason_class(reason: &str) -> String {
    let r = reason.trim();
    let class = r.split(':').next().unwrap_or(r).trim();
    let class = if class.is_empty() { "unknown" } else { class };
    class.chars().take(REASON_LEN).collect()
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
    /// Playbook runs that exceeded their SLO, by playbook.
    pub playbook_slo_missed: BTreeMap<String, u64>,
    /// Restart latencies (exit seen to replacement running).
    pub restart_latency: Option<Buckets>,
    /// MTTR of the incidents closed (`incident.resolved` / `incident.escalated`).
    pub mttr: Option<Buckets>,
    /// `kernel.error` events by component.
    pub kernel_errors: BTreeMap<String, u64>,
    /// Events seen by topic.
    pub events: BTreeMap<String, u64>,
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
            if outcome == "success" {
                if let Some(us) = e.payload.get("latency_us").and_then(Value::as_f64) {
                    self.restart_latency
                        .get_or_insert_with(|| Buckets::new(&RESTART_BUCKETS))
                        .observe(us / 1e6);
                }
            }
            let class = reason_class(&reason);
            *self
                .restarts
                .entry((component, class, outcome.to_owned()))
                .or_insert(0) += 1;
            return;
        }
        match e.topic {
            Topic::PlaybookFinished => {
                let playbook =
                    text(&e.payload, &["playbook", "name"]).unwrap_or_else(|| "unknown".to_owned());
                let flag = |k: &str| e.payload.get(k).and_then(Value::as_bool);
                let outcome = match (flag("dry_run"), flag("escalated"), flag("success")) {
                    (Some(true), _, _) => "dry_run".to_owned(),
                    (_, Some(true), _) => "escalated".to_owned(),
                    (_, _, Some(true)) => "success".to_owned(),
                    (_, _, Some(false)) => "failed".to_owned(),
                    _ => text(&e.payload, &["status", "outcome"])
                        .unwrap_or_else(|| "unknown".to_owned()),
                };
                if flag("slo_met") == Some(false) {
                    *self
                        .playbook_slo_missed
                        .entry(playbook.clone())
                        .or_insert(0) += 1;
                }
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
            Topic::IncidentResolved | Topic::IncidentEscalated => {
                if let Some(m) = e.payload.get("mttr_seconds").and_then(Value::as_f64) {
                    self.mttr
                        .get_or_insert_with(|| Buckets::new(&MTTR_BUCKETS))
                        .observe(m);
                }
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
            json!({"reason": "panic: injected panic in kernel kv", "latency_us": 150}),
        ));
        t.apply(&Event::new(
            Topic::KernelRestartFailed,
            None,
            json!({"kernel": "kv", "reason": "start"}),
        ));
        t.apply(&Event::new(
            Topic::PlaybookFinished,
            None,
            json!({"playbook": "restart_kernel", "success": true, "duration_ms": 300, "slo_met": false}),
        ));
        t.apply(&Event::new(Topic::KernelError, Some("w"), json!({})));
        t.apply(&Event::new(
            Topic::IncidentResolved,
            Some("kv"),
            json!({"mttr_seconds": 0.7}),
        ));
        let m = t.mttr.as_ref().expect("mttr");
        assert_eq!((m.count, m.le[3], m.le[4]), (1, 0, 1));
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
        assert_eq!(t.playbook_slo_missed["restart_kernel"], 1);
        let lat = t.restart_latency.as_ref().expect("latency");
        assert_eq!((lat.count, lat.le[1], lat.le[2]), (1, 0, 1));
        assert_eq!(t.events["kernel.restart.success"], 1);
    }

    #[test]
    fn reasons_become_classes() {
        assert_eq!(reason_class("panic: boom at x.rs:3"), "panic");
        assert_eq!(reason_class("operator"), "operator");
        assert_eq!(reason_class(""), "unknown");
        assert_eq!(reason_class(&"y".repeat(100)).len(), REASON_LEN);
    }
}
