//! The events a supervisor publishes on the bus and logs: their payloads and helpers.

use serde::{Deserialize, Serialize};

use crate::bus::{Bus, Topic};

/// Payload of `kernel.restart.initiated`, `kernel.restart.success` and
/// `kernel.restart.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartEvent {
    /// The restarted child (a kernel's name, or a nested supervisor's).
    pub kernel: String,
    /// The supervisor that restarted it.
    pub supervisor: String,
    /// Why it was restarted (the panic or error message, `heartbeat_timeout`, ...).
    pub reason: String,
    /// The child's restart count, this restart included.
    pub attempt: u64,
    /// Microseconds from the exit being seen to the replacement running (success), or
    /// to the start failing (failed). Absent from `initiated`, and from restarts in place,
    /// which the kernel's own actor carries out before the supervisor hears of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Whether the kernel was repaired in place (same actor, same mailbox); absent when
    /// false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_place: bool,
    /// Why the start failed (`failed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Payload of `kernel.restart.max_attempts`: a child exhausted its attempt limit and is
/// left down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxAttemptsEvent {
    /// The child.
    pub kernel: String,
    /// Its supervisor.
    pub supervisor: String,
    /// The reason of its last exit.
    pub reason: String,
    /// Restarts allowed within the cooldown.
    pub max_attempts: u32,
    /// The cooldown, seconds.
    pub cooldown_s: f64,
}

/// Payload of `system.critical_kernel_down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalDownEvent {
    /// The critical kernel.
    pub kernel: String,
    /// Its supervisor.
    pub supervisor: String,
    /// Why it is down.
    pub reason: String,
}

/// A [`RestartEvent`] borrowed from the supervisor's state, so that publishing one
/// copies nothing beyond what the bus itself keeps.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct RestartEventRef<'a> {
    pub kernel: &'a str,
    pub supervisor: &'a str,
    pub reason: &'a str,
    pub attempt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    pub in_place: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Publishes one of the three restart events.
pub(crate) fn restart(bus: &Bus, topic: Topic, ev: &RestartEventRef<'_>) {
    bus.emit(topic, Some(ev.kernel), ev);
}

/// Logs the outcome of one restart at debug level: the restart's record in the log is
/// its bus event (`kernel.restart.success` or `.failed`).
pub(crate) fn log_restart(ev: &RestartEventRef<'_>, ok: bool) {
    let latency_us = ev.latency_us.unwrap_or(0);
    if ok {
        tracing::debug!(
            kernel = %ev.kernel,
            reason = %ev.reason,
            attempt = ev.attempt,
            latency_us,
            in_place = ev.in_place,
            "child restarted"
        );
    } else {
        tracing::debug!(
            kernel = %ev.kernel,
            reason = %ev.reason,
            attempt = ev.attempt,
            latency_us,
            error = ev.error.unwrap_or(""),
            "child restart failed"
        );
    }
}
