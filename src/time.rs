//! Clocks shared by the whole runtime: a cheap monotonic millisecond counter for
//! heartbeats, and wall-clock timestamps in the formats of the on-disk records.

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Milliseconds since the process-wide monotonic epoch, read through tokio's clock so
/// that tests with paused time see time move only when they advance it.
///
/// Starts at 1, so that 0 can mean "never" in atomics.
pub fn mono_ms() -> u64 {
    let now = tokio::time::Instant::now().into_std();
    now.saturating_duration_since(epoch()).as_millis() as u64 + 1
}

/// The current wall-clock time.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// RFC 3339 with microseconds, the format of every timestamp Grace writes.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `YYYYmmdd_HHMMSS`, used in alert and snapshot file names.
pub fn compact(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d_%H%M%S").to_string()
}
