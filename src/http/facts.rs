//! What the health verdict reads of a kernel and of an incident: implemented by the live
//! [`KernelStatus`] (cheap: atomics and one small lock, no latency quantiles), by
//! [`StatusSnapshot`] and by [`Incident`].

use std::sync::Arc;

use serde::Serialize;

use crate::incident::{Incident, IncidentStatus};
use crate::kernel::{KernelState, KernelStatus, StatusSnapshot};

/// What health needs to know of a kernel.
pub trait KernelFacts {
    /// Its name.
    fn name(&self) -> &str;
    /// Its state.
    fn state(&self) -> KernelState;
    /// Whether it is critical.
    fn critical(&self) -> bool;
    /// Its last restart or failure reason.
    fn reason(&self) -> Option<String>;
    /// Milliseconds since it last went down for a restart; `None` when not known (a
    /// snapshot) or when it never restarted.
    fn down_for_ms(&self) -> Option<u64>;
    /// Its heartbeat (tick) interval in milliseconds.
    fn tick_ms(&self) -> u64;
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
    fn down_for_ms(&self) -> Option<u64> {
        None
    }
    fn tick_ms(&self) -> u64 {
        0
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
    fn down_for_ms(&self) -> Option<u64> {
        self.since_down_ms()
    }
    fn tick_ms(&self) -> u64 {
        self.heartbeat_interval_ms()
    }
}

/// An open incident as `/health` names it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentBrief {
    /// Its id.
    pub incident_id: String,
    /// `open`, `mitigating` or `verifying`.
    pub status: IncidentStatus,
    /// The trigger that opened it.
    pub trigger: String,
    /// The component it is about.
    pub component: String,
}

impl From<&Incident> for IncidentBrief {
    fn from(i: &Incident) -> IncidentBrief {
        IncidentBrief {
            incident_id: i.incident_id.clone(),
            status: i.status,
            trigger: i.trigger.clone(),
            component: i.component.clone(),
        }
    }
}

/// Incidents still being worked on, by status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OpenCounts {
    /// Open, mitigating and verifying together.
    pub total: usize,
    /// Detected, nothing done yet.
    pub open: usize,
    /// A playbook runs.
    pub mitigating: usize,
    /// The steady-state check runs.
    pub verifying: usize,
}

impl OpenCounts {
    /// Counts the incidents of `list` that are still open.
    pub fn of(list: &[Incident]) -> OpenCounts {
        let mut c = OpenCounts::default();
        for i in list.iter().filter(|i| i.status.is_open()) {
            c.total += 1;
            match i.status {
                IncidentStatus::Open => c.open += 1,
                IncidentStatus::Mitigating => c.mitigating += 1,
                _ => c.verifying += 1,
            }
        }
        c
    }
}
