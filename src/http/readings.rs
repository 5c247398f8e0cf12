//! The readings the read endpoints answer from: what costs a mailbox round trip, a file
//! read or a /proc read (the trigger kernels' and the playbook dispatcher's counters, the
//! watchdog's state files, the snapshot directory, samples of this process and of the
//! host), taken by their own task every `[http] sample_interval`. `/operator/dashboard`
//! and `/metrics` take the latest reading and add what is in memory already (kernel
//! statuses, incidents, bus counters), so they never wait on any of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;

use super::dashboard::{self, TriggerView};
use super::samples::{HostSample, ProcessSample, Sampler};
use crate::kernel::Control;
use crate::state::KillSwitch;
use crate::tree::System;

/// How long a reading waits for a kernel's counters.
const STATS_WAIT: Duration = Duration::from_millis(250);

/// The watchdog's figures, from its state files (`state.json`, `watchdog.pid`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WatchdogFigures {
    /// Whether the watchdog of this state directory runs.
    pub running: bool,
    /// Whether the kill switch (`manual_shutdown`) is engaged.
    pub kill_switch: bool,
    /// Restarts of serve by cause, ever.
    pub restarts: BTreeMap<String, u64>,
    /// Crash loops (pauses after repeated failed starts), ever.
    pub crash_loops: u64,
    /// The class of serve's last stop.
    pub last_exit_cause: Option<String>,
    /// When serve last stopped, seconds since the Unix epoch.
    pub last_exit_at: Option<f64>,
}

impl WatchdogFigures {
    /// The figures of the dashboard's `watchdogs` section ([`dashboard::watchdogs`]).
    pub fn of(watchdogs: &Value) -> WatchdogFigures {
        let state = watchdogs["kill_switch"]["state"].clone();
        let ks: KillSwitch = serde_json::from_value(state).unwrap_or_default();
        WatchdogFigures {
            running: watchdogs["watchdog"]["running"].as_bool().unwrap_or(false),
            kill_switch: ks.manual_shutdown,
            restarts: ks.serve_restarts,
            crash_loops: ks.crash_loops,
            last_exit_cause: ks.last_exit_cause,
            last_exit_at: ks
                .last_exit_at
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp_millis() as f64 / 1000.0),
        }
    }
}

/// One reading.
pub struct Readings {
    /// When it was taken (RFC 3339); `None` before the first.
    pub taken_at: Option<String>,
    /// The trigger kernels with their counters.
    pub triggers: Vec<TriggerView>,
    /// The playbook dispatcher's counters (the `self_healing` kernel's stats), null
    /// while it does not answer.
    pub playbooks: Value,
    /// The kill switch, the watchdog and `serve.json` ([`dashboard::watchdogs`]).
    pub watchdogs: Value,
    /// The watchdog's figures.
    pub watchdog: WatchdogFigures,
    /// Snapshot files by kind ([`dashboard::snapshots`]).
    pub snapshots: Value,
    /// This process.
    pub process: ProcessSample,
    /// The host.
    pub host: HostSample,
}

impl Default for Readings {
    fn default() -> Self {
        Readings {
            taken_at: None,
            triggers: Vec::new(),
            playbooks: Value::Null,
            watchdogs: Value::Null,
            watchdog: WatchdogFigures::default(),
            snapshots: Value::Null,
            process: ProcessSample::default(),
            host: HostSample::default(),
        }
    }
}

/// The latest reading, shared by the handlers and the task that takes them.
#[derive(Default, Clone)]
pub struct SharedReadings(Arc<RwLock<Arc<Readings>>>);

impl SharedReadings {
    /// The latest reading.
    pub fn latest(&self) -> Arc<Readings> {
        self.0.read().clone()
    }

    fn set(&self, r: Readings) {
        *self.0.write() = Arc::new(r);
    }
}

/// Every trigger kernel with its counters, asked concurrently.
async fn trigger_views(system: &System) -> Vec<TriggerView> {
    let kernels: Vec<_> = system
        .registry
        .statuses()
        .into_iter()
        .filter(|s| s.name.starts_with(crate::trigger::KERNEL_PREFIX))
        .collect();
    let asks = kernels
        .iter()
        .map(|k| system.registry.control(&k.name, Control::Stats, STATS_WAIT));
    let answers = futures::future::join_all(asks).await;
    kernels
        .into_iter()
        .zip(answers)
        .map(|(status, a)| TriggerView {
            status,
            stats: a.ok(),
        })
        .collect()
}

/// Takes one reading; `sampler` goes to a blocking thread and back.
async fn take(system: &Arc<System>, sampler: &mut Option<Sampler>) -> Readings {
    let (triggers, playbooks) = futures::join!(
        trigger_views(system),
        system
            .registry
            .control("self_healing", Control::Stats, STATS_WAIT)
    );
    let paths = system.paths.clone();
    let mut s = sampler.take().unwrap_or_default();
    let files = tokio::task::spawn_blocking(move || {
        let watchdogs = dashboard::watchdogs(&paths);
        let snapshots = dashboard::snapshots(&paths);
        let (process, host) = s.sample();
        (watchdogs, snapshots, process, host, s)
    })
    .await;
    let (watchdogs, snapshots, process, host) = match files {
        Ok((w, sn, p, h, s)) => {
            *sampler = Some(s);
            (w, sn, p, h)
        }
        Err(e) => {
            tracing::warn!(error = %e, "http readings: sampling files and /proc failed");
            Default::default()
        }
    };
    Readings {
        taken_at: Some(crate::time::rfc3339(crate::time::now())),
        triggers,
        playbooks: playbooks.unwrap_or(Value::Null),
        watchdog: WatchdogFigures::of(&watchdogs),
        watchdogs,
        snapshots,
        process,
        host,
    }
}

/// Takes a reading every `interval` into `shared` until the task is aborted.
pub fn spawn(
    system: Arc<System>,
    interval: Duration,
    shared: SharedReadings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sampler = None;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let r = take(&system, &mut sampler).await;
            shared.set(r);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watchdog_figures_come_from_the_state_file() {
        let v = json!({
            "kill_switch": {"manual_shutdown": true, "state": {
                "manual_shutdown": true, "timestamp": "2025-01-01T00:00:00Z",
                "serve_restarts": {"killed": 2, "hung": 1}, "crash_loops": 1,
                "last_exit_cause": "killed", "last_exit_at": "2025-01-01T00:00:10.5Z"}},
            "watchdog": {"pid": 1, "running": true},
        });
        let f = WatchdogFigures::of(&v);
        assert!(f.running && f.kill_switch);
        assert_eq!(f.restarts["killed"], 2);
        assert_eq!(f.crash_loops, 1);
        assert_eq!(f.last_exit_cause.as_deref(), Some("killed"));
        assert_eq!(f.last_exit_at, Some(1_735_689_610.5));
        assert_eq!(
            WatchdogFigures::of(&Value::Null),
            WatchdogFigures::default()
        );
    }
}
