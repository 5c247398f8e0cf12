//! The built-in triggers of DESIGN.md's trigger table, one file per signal.

mod anomaly;
mod api;
mod drift;
mod exec;
mod heartbeat;
mod model;
mod process;
mod proctree;
mod queue;
mod repeated;
mod resource;
mod sandbox;
mod scheduled;
mod trust;

pub use anomaly::{Burst, BurstDetector, EventAnomaly};
pub use api::{ApiTimeout, KpiThreshold};
pub use drift::{compare, Change, Checksums, ConfigDrift, SharedBaseline};
pub use exec::{run, ExecTrigger, RunOutcome};
pub use heartbeat::{classify, Beat, CriticalHeartbeat, HeartbeatFailure};
pub use model::{parse_sidecar, read_manifest, Mismatch, ModelIntegrity};
pub use process::{ProcessProbe, ProcessReading, ProcessTarget};
pub use proctree::{descendants, TreeProbe, TreeReading};
pub use queue::{backlog, LatencyQueue};
pub use repeated::{normalize, RepeatedError};
pub use resource::{disk_percent, HostReading, ResourceSpike};
pub use sandbox::SandboxFailure;
pub use scheduled::{next_local, Scheduled};
pub use trust::TrustScore;

use serde_json::Value;

use crate::bus::Event;

/// Held by the tests that measure a spinning thread or process, so that they do not
/// compete with each other for the cores they measure.
#[cfg(test)]
pub(crate) static CPU_TEST: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The kernel or component an event is about: the event's own, else the payload's
/// `kernel`, `component` or `name`.
pub(crate) fn event_component(event: &Event) -> Option<String> {
    event.component.clone().or_else(|| {
        ["kernel", "component", "name"]
            .iter()
            .find_map(|k| event.payload.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    })
}

/// The error text an event carries: a string payload, or its `reason`, `error`,
/// `message` or `panic`.
pub(crate) fn event_text(event: &Event) -> Option<String> {
    if let Some(s) = event.payload.as_str() {
        return Some(s.to_owned());
    }
    ["reason", "error", "message", "panic"]
        .iter()
        .find_map(|k| event.payload.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Whether `reason` contains one of `words` (any case, empty words ignored).
pub(crate) fn mentions_any(reason: &str, words: &[String]) -> bool {
    let r = reason.to_lowercase();
    words
        .iter()
        .any(|w| !w.is_empty() && r.contains(&w.to_lowercase()))
}
