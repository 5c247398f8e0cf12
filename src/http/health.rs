//! `GET /health`: whether every critical kernel is up, as the watchdog's liveness probe
//! and operators see it.

use serde::Serialize;

use std::sync::Arc;

use crate::kernel::{KernelState, KernelStatus, StatusSnapshot};

/// Kernel counts by state, as shown by `/health` and the dashboard.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct KernelCounts {
    /// All registered kernels.
    pub total: usize,
    /// Running (healthy).
    pub running: usize,
    /// Failed, restarting, or stopped.
    pub failed: usize,
    /// Running but degraded.
    pub degraded: usize,
}

/// One kernel that is not healthy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelProblem {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: KernelState,
    /// Whether it is critical.
    pub critical: bool,
    /// Its last restart or failure reason.
    pub reason: Option<String>,
}

/// The body of `GET /health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `healthy` or `degraded`.
    pub status: &'static str,
    /// RFC 3339 time of the answer.
    pub timestamp: String,
    /// This serve's process id.
    pub pid: u32,
    /// Seconds since the HTTP server started.
    pub uptime_s: f64,
    /// Counts by state.
    pub kernels: KernelCounts,
    /// Kernels that are down (failed, restarting, stopped).
    pub failed: Vec<KernelProblem>,
    /// Kernels that run but report degraded health.
    pub degraded: Vec<KernelProblem>,
    /// Names of critical kernels that are not up; non-empty means `degraded`.
    pub critical_down: Vec<String>,
    /// Whether emergency mode is on.
    pub emergency: bool,
}

impl HealthReport {
    /// Whether serve is healthy (every critical kernel up).
    pub fn healthy(&self) -> bool {
        self.critical_down.is_empty()
    }
}

/// What health needs to know of a kernel: implemented by the live [`KernelStatus`]
/// (cheap: no latency quantiles are computed) and by [`StatusSnapshot`].
pub trait KernelFacts {
    /// Its name.
    fn name(&self) -> &str;
    /// Its state.
    fn state(&self) -> KernelState;
    /// Whether it is critical.
    fn critical(&self) -> bool;
    /// Its last restart or failure reason.
    fn reason(&self) -> Option<String>;
}

impl KernelFacts for StatusSnapshot {
    fn name(&self) -> &str {
        &self.name
    }
    fn state(&self) -> KernelState {
        self.state
    }
    fn critical(&self) -> bool {
        self.critical
    }
    fn reason(&self) -> Option<String> {
        self.last_reason.clone()
    }
}

impl KernelFacts for Arc<KernelStatus> {
    fn name(&self) -> &str {
        &self.name
    }
    fn state(&self) -> KernelState {
        KernelStatus::state(self)
    }
    fn critical(&self) -> bool {
        self.critical
    }
    fn reason(&self) -> Option<String> {
        self.last_reason()
    }
}

/// Counts kernels by state (a starting kernel counts only in the total).
pub fn count_kernels<K: KernelFacts>(kernels: &[K]) -> KernelCounts {
    let mut c = KernelCounts {
        total: kernels.len(),
        ..KernelCounts::default()
    };
    for k in kernels {
        match k.state() {
            KernelState::Running => c.running += 1,
            KernelState::Degraded => c.degraded += 1,
            KernelState::Failed | KernelState::Restarting | KernelState::Stopped => c.failed += 1,
            KernelState::Starting => {}
        }
    }
    c
}

/// Decides health from the kernels: degraded when a critical kernel is not up (a
/// critical kernel still starting counts as not up). A non-critical kernel that is down
/// is listed but does not make serve unhealthy: restarting serve would not help it, and
/// the watchdog acts on this answer.
pub fn assess<K: KernelFacts>(
    kernels: &[K],
    timestamp: String,
    uptime_s: f64,
    emergency: bool,
) -> HealthReport {
    let mut failed = Vec::new();
    let mut degraded = Vec::new();
    let mut critical_down = Vec::new();
    for k in kernels {
        let state = k.state();
        if k.critical() && !state.is_up() {
            critical_down.push(k.name().to_owned());
        }
        let list = match state {
            KernelState::Failed | KernelState::Restarting | KernelState::Stopped => &mut failed,
            KernelState::Degraded => &mut degraded,
            KernelState::Running | KernelState::Starting => continue,
        };
        list.push(KernelProblem {
            name: k.name().to_owned(),
            state,
            critical: k.critical(),
            reason: k.reason(),
        });
    }
    HealthReport {
        status: if critical_down.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        timestamp,
        pid: std::process::id(),
        uptime_s,
        kernels: count_kernels(kernels),
        failed,
        degraded,
        critical_down,
        emergency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Isolation;

    fn snap(name: &str, state: KernelState, critical: bool) -> StatusSnapshot {
        StatusSnapshot {
            name: name.to_owned(),
            state,
            critical,
            isolation: Isolation::Task,
            restarts: 0,
            last_reason: None,
            heartbeat_age_ms: 0,
            heartbeat_timeout_ms: 5000,
            uptime_s: 1.0,
            messages: 0,
            mailbox: 0,
            handle_p50_us: 0.0,
            handle_p99_us: 0.0,
        }
    }

    #[test]
    fn a_down_critical_kernel_makes_serve_degraded() {
        let ks = [
            snap("a", KernelState::Running, true),
            snap("b", KernelState::Failed, false),
            snap("c", KernelState::Degraded, false),
        ];
        let r = assess(&ks, String::new(), 0.0, false);
        assert!(r.healthy());
        assert_eq!(r.status, "healthy");
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.degraded.len(), 1);
        assert_eq!(
            r.kernels,
            KernelCounts {
                total: 3,
                running: 1,
                failed: 1,
                degraded: 1
            }
        );

        let ks = [
            snap("a", KernelState::Restarting, true),
            snap("b", KernelState::Running, false),
        ];
        let r = assess(&ks, String::new(), 0.0, false);
        assert!(!r.healthy());
        assert_eq!(r.status, "degraded");
        assert_eq!(r.critical_down, vec!["a".to_owned()]);
    }

    #[test]
    fn no_kernels_is_healthy() {
        assert!(assess::<StatusSnapshot>(&[], String::new(), 0.0, false).healthy());
    }

    #[test]
    fn a_starting_critical_kernel_is_down_but_not_failed() {
        let r = assess(
            &[snap("a", KernelState::Starting, true)],
            String::new(),
            0.0,
            false,
        );
        assert!(!r.healthy());
        assert!(r.failed.is_empty());
    }
}
