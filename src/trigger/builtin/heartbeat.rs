//! `heartbeat_failure` and `critical_heartbeat`: kernels whose heartbeat is too old or
//! which are down, read from the registry's shared statuses.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::event_component;
use crate::bus::Event;
use crate::incident::Severity;
use crate::kernel::{KernelContext, KernelState, KernelStatus};
use crate::trigger::config::{CriticalHeartbeatConfig, HeartbeatFailureConfig};
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// `heartbeat_failure`: a kernel whose heartbeat is older than its timeout, seen in the
/// registry or announced by `kernel.heartbeat.missed` → `restart_kernel`.
pub struct HeartbeatFailure {
    cfg: HeartbeatFailureConfig,
    /// Kernels announced by `kernel.heartbeat.missed` since the last check, with the
    /// event's time and payload.
    missed: BTreeMap<String, (String, Value)>,
}

impl HeartbeatFailure {
    /// The trigger with its settings.
    pub fn new(cfg: HeartbeatFailureConfig) -> HeartbeatFailure {
        HeartbeatFailure {
            cfg,
            missed: BTreeMap::new(),
        }
    }

    /// `seen_at`: when the heartbeat monitor saw the miss, if it announced it; that is
    /// the detection time (the monitor may restart the kernel before the next check).
    fn alert(
        &self,
        name: &str,
        critical: bool,
        details: Value,
        summary: String,
        seen_at: Option<String>,
    ) -> Finding {
        let mut alert = Alert::new(
            Level::Incident,
            "heartbeat_failure",
            name,
            "heartbeat_failure",
            if critical {
                Severity::Critical
            } else {
                Severity::High
            },
            Some(self.cfg.playbook_or("restart_kernel")),
            summary,
        )
        .details(details);
        alert.draft.detected_at = seen_at;
        Finding::Holds(alert)
    }
}

fn status_details(st: &KernelStatus, source: &str) -> Value {
    json!({
        "heartbeat_age_ms": st.heartbeat_age_ms(),
        "heartbeat_timeout_ms": st.heartbeat_timeout_ms(),
        "state": st.state(),
        "restarts": st.restarts(),
        "source": source,
    })
}

#[async_trait]
impl Trigger for HeartbeatFailure {
    fn subscriptions(&self) -> Vec<String> {
        vec!["kernel.heartbeat.missed".to_owned()]
    }

    fn on_event(&mut self, event: &Event, _ctx: &KernelContext) {
        if let Some(name) = event_component(event) {
            self.missed
                .insert(name, (event.at.clone(), event.payload.clone()));
        }
    }

    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let mut out = Vec::new();
        let include_critical = self.cfg.include_critical;
        // One pass over the shared statuses, cloning only the hung ones.
        let mut hung: Vec<Arc<KernelStatus>> = Vec::new();
        ctx.system.registry.for_each(|e| {
            let st = &e.status;
            if (!st.critical || include_critical) && st.is_hung() {
                hung.push(st.clone());
            }
        });
        hung.sort_by(|a, b| a.name.cmp(&b.name));
        for st in hung {
            let seen_at = self.missed.remove(&st.name).map(|(at, _)| at);
            let summary = format!(
                "kernel {} missed its heartbeat: last beat {:.1} s ago, timeout {:.1} s",
                st.name,
                st.heartbeat_age_ms() as f64 / 1000.0,
                st.heartbeat_timeout_ms() as f64 / 1000.0
            );
            out.push(self.alert(
                &st.name,
                st.critical,
                status_details(&st, "status"),
                summary,
                seen_at,
            ));
        }
        for (name, (at, payload)) in std::mem::take(&mut self.missed) {
            let entry = ctx.system.registry.get(&name);
            let critical = entry.as_ref().is_some_and(|e| e.status.critical);
            if critical && !self.cfg.include_critical {
                continue;
            }
            let details = json!({ "source": "kernel.heartbeat.missed", "event": payload });
            let summary = format!("kernel {name} missed its heartbeat (kernel.heartbeat.missed)");
            out.push(self.alert(&name, critical, details, summary, Some(at)));
        }
        Ok(out)
    }
}

/// How a critical kernel is doing, as `critical_heartbeat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Up, beating in time.
    Healthy,
    /// Up, but its last beat is older than the late fraction of its timeout.
    Late,
    /// Down: restarting or failed, or its beat is older than its timeout.
    Down,
}

/// Classifies one critical kernel. A kernel stopped on purpose is not down (the
/// supervisor's `system.critical_kernel_down` covers one that stays down); one stuck
/// while starting is, once its timeout passes. `restarted` says its supervisor took it
/// down and brought it back within the recent window: it went down, even if the check
/// finds it running again (a restart takes microseconds, a check comes every seconds).
pub fn classify(
    state: KernelState,
    age_ms: u64,
    timeout_ms: u64,
    late_fraction: f64,
    restarted: bool,
) -> Beat {
    if restarted
        || matches!(state, KernelState::Restarting | KernelState::Failed)
        || (state != KernelState::Stopped && age_ms > timeout_ms)
    {
        Beat::Down
    } else if state.is_up() && age_ms as f64 > timeout_ms as f64 * late_fraction {
        Beat::Late
    } else {
        Beat::Healthy
    }
}

/// How long a restart keeps counting as "went down": two check intervals (a restart of
/// the trigger itself may skip one), at least one second.
fn recent_window_ms(interval: std::time::Duration) -> u64 {
    u64::try_from(interval.as_millis().saturating_mul(2))
        .unwrap_or(u64::MAX)
        .max(1000)
}

/// `critical_heartbeat`: every check over the critical kernels; one down is an incident
/// (`critical_kernel_restart`), `emergency_min` or more down one `event.emergency`
/// (`emergency_critical_kernel_recovery`), a late beat an early warning
/// (`proactive_kernel_health_check`).
pub struct CriticalHeartbeat {
    cfg: CriticalHeartbeatConfig,
}

impl CriticalHeartbeat {
    /// The trigger with its settings.
    pub fn new(cfg: CriticalHeartbeatConfig) -> CriticalHeartbeat {
        CriticalHeartbeat { cfg }
    }
}

/// Failures closer together than this are one event. Kernels killed together come back
/// one after another (a supervisor handles one exit at a time), so a check between two
/// of those restarts would see one kernel down, and the next check the emergency: two
/// incidents for one failure. A check that finds fewer kernels down than an emergency
/// takes, the latest of them down for less than this, reports none of them yet: the next
/// check, one interval later and still within the window in which a restart counts as
/// down, sees the whole burst. (It does not wait here: a check that waits holds up its
/// trigger's stop, and with it the supervisor restarting the very kernels it waits for.)
const SETTLE_MS: u64 = 250;

/// What one look over the critical kernels found.
struct Scan {
    /// The kernels down, as incident details.
    down: Vec<Value>,
    /// Early warnings for late beats.
    late: Vec<Finding>,
    /// How long ago the most recent of the down kernels went down for a restart.
    latest_down_ms: Option<u64>,
}

impl CriticalHeartbeat {
    fn scan(&self, ctx: &KernelContext) -> Scan {
        let mut scan = Scan {
            down: Vec::new(),
            late: Vec::new(),
            latest_down_ms: None,
        };
        let mut critical: Vec<Arc<KernelStatus>> = Vec::new();
        ctx.system.registry.for_each(|e| {
            if e.status.critical {
                critical.push(e.status.clone());
            }
        });
        critical.sort_by(|a, b| a.name.cmp(&b.name));
        let recent = recent_window_ms(self.cfg.common().interval);
        for st in critical {
            let (state, age, timeout) =
                (st.state(), st.heartbeat_age_ms(), st.heartbeat_timeout_ms());
            let since_down = st.since_down_ms().filter(|ms| *ms <= recent);
            match classify(
                state,
                age,
                timeout,
                self.cfg.late_fraction,
                since_down.is_some(),
            ) {
                Beat::Healthy => {}
                Beat::Down => {
                    if let Some(ms) = since_down {
                        scan.latest_down_ms = Some(scan.latest_down_ms.map_or(ms, |m| m.min(ms)));
                    }
                    scan.down.push(json!({
                        "kernel": st.name, "state": state, "heartbeat_age_ms": age,
                        "heartbeat_timeout_ms": timeout, "last_reason": st.last_reason(),
                        "restarts": st.restarts(), "down_ms_ago": since_down,
                    }));
                }
                Beat::Late => scan.late.push(Finding::Holds(
                    Alert::new(
                        Level::EarlyWarning,
                        "critical_heartbeat",
                        &st.name,
                        "late_heartbeat",
                        Severity::Medium,
                        Some(&self.cfg.warning_playbook),
                        format!(
                            "critical kernel {} beats late: last beat {:.1} s ago, timeout {:.1} s",
                            st.name,
                            age as f64 / 1000.0,
                            timeout as f64 / 1000.0
                        ),
                    )
                    .details(json!({ "heartbeat_age_ms": age, "heartbeat_timeout_ms": timeout })),
                )),
            }
        }
        scan
    }
}

#[async_trait]
impl Trigger for CriticalHeartbeat {
    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let emergency = self.cfg.emergency_min.max(2);
        let scan = self.scan(ctx);
        if scan.down.len() < emergency && scan.latest_down_ms.is_some_and(|ms| ms < SETTLE_MS) {
            return Ok(scan.late);
        }
        let Scan {
            down,
            late: mut out,
            ..
        } = scan;
        if down.len() >= emergency {
            let names: Vec<&str> = down.iter().filter_map(|d| d["kernel"].as_str()).collect();
            let summary = format!("{} critical kernels down: {}", down.len(), names.join(", "));
            out.push(Finding::Holds(
                Alert::new(
                    Level::Emergency,
                    "critical_heartbeat",
                    "system",
                    "critical_kernels_down",
                    Severity::Critical,
                    Some(&self.cfg.emergency_playbook),
                    summary,
                )
                .details(json!({ "count": down.len(), "down": down })),
            ));
        } else {
            for d in down {
                let name = d["kernel"].as_str().unwrap_or_default().to_owned();
                out.push(Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "critical_heartbeat",
                        &name,
                        "critical_kernel_down",
                        Severity::Critical,
                        Some(self.cfg.playbook_or("critical_kernel_restart")),
                        format!("critical kernel {name} is down ({})", d["state"]),
                    )
                    .details(d),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classification_of_critical_kernels() {
        use KernelState::*;
        assert_eq!(classify(Running, 100, 5000, 0.5, false), Beat::Healthy);
        assert_eq!(classify(Running, 2600, 5000, 0.5, false), Beat::Late);
        assert_eq!(classify(Degraded, 5001, 5000, 0.5, false), Beat::Down);
        assert_eq!(classify(Restarting, 0, 5000, 0.5, false), Beat::Down);
        assert_eq!(classify(Failed, 0, 5000, 0.5, false), Beat::Down);
        assert_eq!(classify(Stopped, 99_999, 5000, 0.5, false), Beat::Healthy);
        assert_eq!(classify(Starting, 100, 5000, 0.5, false), Beat::Healthy);
        assert_eq!(classify(Starting, 6000, 5000, 0.5, false), Beat::Down);
        assert_eq!(
            classify(Running, 10, 5000, 0.5, true),
            Beat::Down,
            "restarted"
        );
    }

    proptest! {
        #[test]
        fn an_up_kernel_is_down_exactly_past_its_timeout(age in 0u64..20_000, timeout in 1u64..10_000) {
            let b = classify(KernelState::Running, age, timeout, 0.5, false);
            prop_assert_eq!(b == Beat::Down, age > timeout);
            prop_assert_eq!(b == Beat::Healthy, age as f64 <= timeout as f64 * 0.5);
        }
    }
}
