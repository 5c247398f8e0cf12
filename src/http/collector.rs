//! Counts what the bus reports (restarts by kernel and reason, playbook runs and their
//! durations, kernel errors, events by topic) for `/metrics`. [`Tallies::apply`] is the
//! plain decision; [`spawn`] only feeds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use super::exposition::HistogramData;
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

/// A histogram: counts per range (values up to each bound and above the previous one,
/// then above the last bound), sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// The upper bounds.
    pub bounds: &'static [f64],
    /// Counts per range, `bounds.len() + 1` of them.
    pub counts: Vec<u64>,
    /// Sum of values.
    pub sum: f64,
}

impl Buckets {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Adds one value (seconds).
    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The figures for the exposition.
    pub fn data(&self) -> HistogramData<'static> {
        HistogramData {
            bounds: self.bounds,
            counts: self.counts.clone(),
            sum: self.sum,
        }
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(&DURATION_BUCKETS)
    }
}

/// A restart reason as a label value: one of a fixed few classes, so that free-text
/// messages never make a series each. `panic` (the kernel panicked), `error` (it
/// returned or reported an error, or its process exited), `heartbeat_timeout` (hung),
/// `killed` (killed by a signal or by its supervisor), `start_failed` (its start
/// failed), `explicit` (asked for: an operator, a playbook, a snapshot restore, a
/// release from quarantine), `sibling` (restarted with a failed sibling under
/// `one_for_all` or `rest_for_one`), `other`.
pub fn reason_class(reason: &str) -> &'static str {
    let r = reason.trim();
    let starts = |p: &str| r.starts_with(p);
    if r == "panic" || starts("panic:") || starts("panicked") {
        "panic"
    } else if r == "heartbeat_timeout" || starts("hung") {
        "heartbeat_timeout"
    } else if r == "killed" || r == "actor_task_cancelled" || starts("killed by") {
        "killed"
    } else if starts("start failed") {
        "start_failed"
    } else if r == "operator"
        || starts("playbook ")
        || starts("weights restored")
        || starts("released from quarantine")
    {
        "explicit"
    } else if starts("one_for_all restart after") || starts("rest_for_one restart after") {
        "sibling"
    } else if r.is_empty() || starts("restart intensity exceeded") {
        "other"
    } else {
        "error"
    }
}

/// A playbook run's outcome as a label value: `success`, `failed`, `escalated`,
/// `dry_run`, or `other` for anything else.
fn outcome_class(outcome: &str) -> &'static str {
    ["success", "failed", "escalated", "dry_run"]
        .into_iter()
        .find(|o| *o == outcome)
        .unwrap_or("other")
}

/// Everything counted from bus events.
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    /// Restarts by (kernel, reason class, outcome).
    pub restarts: BTreeMap<(String, &'static str, &'static str), u64>,
    /// Playbook runs by (playbook, outcome class).
    pub playbook_runs: BTreeMap<(String, &'static str), u64>,
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
            *self
                .restarts
                .entry((component.clone(), reason_class(&reason), outcome))
                .or_insert(0) += 1;
            return;
        }
        match e.topic {
            Topic::PlaybookFinished => {
                let playbook =
                    text(&e.payload, &["playbook", "name"]).unwrap_or_else(|| "unknown".to_owned());
                let flag = |k: &str| e.payload.get(k).and_then(Value::as_bool);
                let outcome = match (flag("dry_run"), flag("escalated"), flag("success")) {
                    (Some(true), _, _) => "dry_run",
                    (_, Some(true), _) => "escalated",
                    (_, _, Some(true)) => "success",
                    (_, _, Some(false)) => "failed",
                    _ => {
                        outcome_class(&text(&e.payload, &["status", "outcome"]).unwrap_or_default())
                    }
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
            json!({"kernel": "kv", "reason": "start failed: no such file"}),
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
        assert_eq!((m.count(), m.counts[4]), (1, 1), "0.7 s is in (0.5, 1]");
        assert_eq!(t.restarts[&("kv".into(), "panic", "success")], 1);
        assert_eq!(t.restarts[&("kv".into(), "start_failed", "failed")], 1);
        assert_eq!(t.playbook_runs[&("restart_kernel".into(), "success")], 1);
        let b = &t.playbook_durations["restart_kernel"];
        assert_eq!((b.count(), b.counts[3]), (1, 1), "0.3 s is in (0.1, 0.5]");
        assert_eq!(t.kernel_errors["w"], 1);
        assert_eq!(t.playbook_slo_missed["restart_kernel"], 1);
        let lat = t.restart_latency.as_ref().expect("latency");
        assert_eq!(
            (lat.count(), lat.counts[2]),
            (1, 1),
            "150 µs is in (100 µs, 1 ms]"
        );
        assert_eq!(t.events["kernel.restart.success"], 1);
    }

    #[test]
    fn reasons_become_classes() {
        for (reason, class) in [
            ("panic: boom at x.rs:3", "panic"),
            ("heartbeat_timeout", "heartbeat_timeout"),
            ("killed by signal 9 (SIGKILL)", "killed"),
            ("killed", "killed"),
            ("start failed: exec: not found", "start_failed"),
            ("operator", "explicit"),
            ("playbook restart_kernel for incident inc-1", "explicit"),
            ("released from quarantine (inc-2)", "explicit"),
            ("one_for_all restart after kv failed: panic: x", "sibling"),
            ("exited with status 1", "error"),
            ("", "other"),
        ] {
            assert_eq!(reason_class(reason), class, "{reason}");
        }
        assert_eq!(outcome_class("weird"), "other");
    }
}
