//! Unit tests of the health verdict.

use super::*;
use crate::kernel::{Isolation, StatusSnapshot};

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

/// A kernel whose time down is known, as the live status knows it.
struct Live {
    name: &'static str,
    state: KernelState,
    critical: bool,
    down_for_ms: Option<u64>,
    reason: &'static str,
}

impl KernelFacts for Live {
    fn name(&self) -> &str {
        self.name
    }
    fn state(&self) -> KernelState {
        self.state
    }
    fn critical(&self) -> bool {
        self.critical
    }
    fn reason(&self) -> Option<String> {
        Some(self.reason.to_owned())
    }
    fn down_for_ms(&self) -> Option<u64> {
        self.down_for_ms
    }
    fn tick_ms(&self) -> u64 {
        5_000
    }
}

fn incident(id: &str, status: &str) -> Incident {
    serde_json::from_value(serde_json::json!({
        "incident_id": id, "detected_at": "2026-01-01T00:00:00Z", "status": status,
        "failure_mode": "crash", "severity": "high", "component": "web",
        "trigger": "sandbox_failure", "occurrences": 1,
    }))
    .expect("incident")
}

fn verdict<K: KernelFacts>(ks: &[K], open: &[Incident]) -> HealthReport {
    assess(ks, open, Context::default())
}

#[test]
fn any_kernel_down_makes_serve_degraded_and_says_which() {
    let ks = [
        snap("a", KernelState::Running, true),
        snap("c", KernelState::Degraded, false),
    ];
    let r = verdict(&ks, &[]);
    assert!(r.healthy(), "{:?}", r.reasons);
    assert_eq!(r.status, "healthy");
    assert_eq!(
        r.degraded.len(),
        1,
        "a kernel reporting degraded health is listed"
    );

    let ks = [
        snap("a", KernelState::Running, true),
        snap("b", KernelState::Stopped, false),
        snap("c", KernelState::Failed, false),
    ];
    let r = verdict(&ks, &[]);
    assert_eq!(r.status, "degraded");
    assert_eq!(r.down, vec!["b".to_owned(), "c".to_owned()]);
    assert!(r.critical_down.is_empty());
    assert_eq!(r.reasons[0], "kernel b stopped");
    assert!(
        r.reasons[1].contains("left down by its supervisor"),
        "{:?}",
        r.reasons
    );
    assert_eq!(
        r.kernels,
        KernelCounts {
            total: 3,
            running: 1,
            failed: 2,
            degraded: 0
        }
    );
}

#[test]
fn a_restart_counts_as_down_only_when_it_lasts() {
    let k = |down_for_ms| Live {
        name: "web",
        state: KernelState::Restarting,
        critical: false,
        down_for_ms,
        reason: "exit: killed",
    };
    assert!(verdict(&[k(Some(5))], &[]).healthy());
    let r = verdict(&[k(Some(RESTART_MOMENT_MS + 1))], &[]);
    assert_eq!(r.down, vec!["web".to_owned()]);
    assert!(
        r.reasons[0].starts_with("kernel web restarting for 1.0 s"),
        "{:?}",
        r.reasons
    );
    assert!(r.reasons[0].ends_with("(exit: killed)"), "{:?}", r.reasons);
    assert!(!verdict(&[k(None)], &[]).healthy(), "how long is not known");
}

#[test]
fn a_starting_kernel_counts_when_critical() {
    let r = verdict(&[snap("a", KernelState::Starting, true)], &[]);
    assert!(!r.healthy());
    assert!(r.failed.is_empty());
    assert_eq!(r.reasons, vec!["critical kernel a starting".to_owned()]);
    assert!(verdict(&[snap("b", KernelState::Starting, false)], &[]).healthy());
}

#[test]
fn open_incidents_make_serve_degraded_closed_ones_do_not() {
    let list = [
        incident("inc_1", "open"),
        incident("inc_2", "mitigating"),
        incident("inc_3", "verifying"),
        incident("inc_4", "resolved"),
    ];
    let r = verdict::<StatusSnapshot>(&[], &list);
    assert_eq!(r.status, "degraded");
    assert_eq!(
        r.incidents,
        OpenCounts {
            total: 3,
            open: 1,
            mitigating: 1,
            verifying: 1
        }
    );
    assert_eq!(r.reasons.len(), 3);
    assert_eq!(r.reasons[0], "incident inc_1 open: sandbox_failure on web");
    assert_eq!(r.open_incidents.len(), 3);
    assert!(verdict::<StatusSnapshot>(&[], &list[3..]).healthy());
}

#[test]
fn many_incidents_are_named_up_to_a_bound_and_counted() {
    let list: Vec<Incident> = (0..NAMED_INCIDENTS + 3)
        .map(|n| incident(&format!("inc_{n}"), "open"))
        .collect();
    let r = verdict::<StatusSnapshot>(&[], &list);
    assert_eq!(r.reasons.len(), NAMED_INCIDENTS + 1);
    assert_eq!(r.reasons[NAMED_INCIDENTS], "3 more incidents open");
    assert_eq!(r.incidents.total, NAMED_INCIDENTS + 3);
}

#[test]
fn emergency_mode_is_a_reason_and_nothing_is_healthy() {
    let r = assess::<StatusSnapshot>(
        &[],
        &[],
        Context {
            emergency: true,
            ..Context::default()
        },
    );
    assert_eq!(r.reasons, vec!["emergency mode on".to_owned()]);
    assert!(verdict::<StatusSnapshot>(&[], &[]).healthy());
}

#[test]
fn a_recent_failed_sync_of_the_incident_store_is_a_reason() {
    let k = |down_for_ms, reason| Live {
        name: DURABLE_KERNEL,
        state: KernelState::Running,
        critical: true,
        down_for_ms: Some(down_for_ms),
        reason,
    };
    let full = "durable sync failed: incidents file x: No space left on device (os error 28)";
    let r = verdict(&[k(2_000, full)], &[]);
    assert_eq!(r.durability_error.as_deref(), Some(full));
    assert_eq!(
        r.reasons,
        vec![format!("incident store not durable: {full}")]
    );
    assert!(
        verdict(&[k(DURABLE_WINDOW_MS + 1, full)], &[]).healthy(),
        "syncs succeed again"
    );
    assert!(
        verdict(&[k(2_000, "exit: killed")], &[]).healthy(),
        "a restart is not a sync failure"
    );
}

#[test]
fn a_record_the_incident_store_could_not_write_makes_serve_degraded() {
    let ks = [snap("a", KernelState::Running, false)];
    let ctx = Context {
        durability_error: Some("audit log: No space left on device".into()),
        ..Context::default()
    };
    let r = assess(&ks, &[], ctx);
    assert_eq!(r.status, "degraded");
    assert_eq!(
        r.reasons,
        vec!["incident store not durable: audit log: No space left on device".to_owned()]
    );
}
