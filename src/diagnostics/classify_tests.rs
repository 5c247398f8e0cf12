//! Cases and properties of [`super::classify::classify`].

use proptest::prelude::*;

use super::classify::{classify, FixAction, RootCause, MIN_CONFIDENCE, UNKNOWN_CONFIDENCE};
use super::evidence::{DependencyDown, Evidence, IncidentEvidence, KernelEvidence};

fn kernel(restarts: u64, reason: Option<&str>) -> KernelEvidence {
    KernelEvidence {
        state: "running".into(),
        critical: false,
        restarts,
        last_reason: reason.map(str::to_owned),
        heartbeat_age_ms: 10,
    }
}

fn base(error: Option<&str>) -> Evidence {
    let mut e = Evidence {
        component: "worker".into(),
        error: error.map(str::to_owned),
        kernel: Some(kernel(1, None)),
        ..Evidence::default()
    };
    e.resources.cpu_percent = 20.0;
    e.resources.memory_percent = 40.0;
    e.resources.disk_percent = Some(50.0);
    e
}

fn down(name: &str) -> DependencyDown {
    DependencyDown {
        name: name.into(),
        state: Some("failed".into()),
        critical: true,
        last_reason: Some("panic".into()),
    }
}

fn drift(component: &str) -> IncidentEvidence {
    IncidentEvidence {
        incident_id: "inc_20250101_000000_000000".into(),
        trigger: "config_drift".into(),
        failure_mode: "config_drift".into(),
        component: component.into(),
        status: "open".into(),
        detected_at: "2025-01-01T00:00:00.000000Z".into(),
        occurrences: 1,
        summary: String::new(),
    }
}

fn actions(e: &Evidence) -> Vec<(FixAction, bool)> {
    classify(e)
        .fixes
        .into_iter()
        .map(|f| (f.action, f.safe))
        .collect()
}

#[test]
fn a_down_dependency_named_in_the_error_restarts_it_first() {
    let mut e = base(Some("call to kv_store failed: connection refused"));
    e.dependencies_down = vec![down("kv_store")];
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Dependency);
    assert!(d.confidence >= 0.8, "{d:?}");
    assert_eq!(
        actions(&e),
        [
            (
                FixAction::RestartDependency {
                    kernel: "kv_store".into()
                },
                true
            ),
            (
                FixAction::RestartComponent {
                    kernel: "worker".into()
                },
                true
            ),
        ]
    );
}

#[test]
fn cpu_pressure_sheds_load() {
    let mut e = base(None);
    e.resources.cpu_percent = 97.0;
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Resource);
    assert_eq!(
        actions(&e),
        [(
            FixAction::ShedLoad {
                kernel: "worker".into()
            },
            true
        )]
    );
}

#[test]
fn memory_exhaustion_with_an_oom_error_is_resource_with_high_confidence() {
    let mut e = base(Some("memory allocation of 1073741824 bytes failed"));
    e.resources.memory_percent = 95.0;
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Resource);
    assert!(d.confidence >= 0.8, "{d:?}");
    let a = actions(&e);
    assert!(a.contains(&(
        FixAction::ClearCaches {
            kernel: "worker".into()
        },
        true
    )));
}

#[test]
fn a_full_disk_is_escalated_not_cleaned_automatically() {
    let mut e = base(Some(
        "write snapshot: No space left on device (os error 28)",
    ));
    e.resources.disk_percent = Some(99.5);
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Resource);
    assert!(actions(&e).contains(&(FixAction::FreeDisk, false)));
}

#[test]
fn drift_on_the_component_is_configuration() {
    let mut e = base(Some("invalid value for key batch_size"));
    e.drift = vec![drift("worker")];
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Configuration);
    assert!(d.confidence >= 0.85, "{d:?}");
    assert_eq!(
        actions(&e),
        [(
            FixAction::RestoreConfiguration {
                components: vec!["worker".into()]
            },
            false
        )]
    );
}

#[test]
fn a_panic_is_code() {
    let e = base(Some(
        "panic: index out of bounds: the len is 3 but the index is 7",
    ));
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Code);
    let a = actions(&e);
    assert_eq!(a.len(), 1);
    assert!(
        matches!(&a[0], (FixAction::FixCode { signature }, false) if signature.contains("index out of bounds"))
    );
}

#[test]
fn keywords_match_whole_words_only() {
    // "boom" holds "oom", "configured" holds "config": neither is a resource or a
    // configuration signal.
    let e = base(Some("panic: boom"));
    assert_eq!(classify(&e).root_cause, RootCause::Code);
    let e = base(Some("the kvstore answered"));
    assert_eq!(classify(&e).root_cause, RootCause::Unknown);
}

#[test]
fn the_same_failure_over_and_over_is_code() {
    let mut e = base(None);
    e.kernel = Some(kernel(5, Some("worker exited with status 3")));
    assert_eq!(classify(&e).root_cause, RootCause::Code);
}

#[test]
fn no_evidence_is_unknown_and_investigated() {
    let e = base(None);
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Unknown);
    assert_eq!(d.confidence, UNKNOWN_CONFIDENCE);
    assert_eq!(actions(&e), [(FixAction::Investigate, false)]);
}

#[test]
fn pressure_on_a_component_that_is_not_a_kernel_is_escalated() {
    let mut e = base(None);
    e.component = "host".into();
    e.kernel = None;
    e.resources.cpu_percent = 99.0;
    let d = classify(&e);
    assert_eq!(d.root_cause, RootCause::Resource);
    assert!(d.fixes.iter().all(|f| !f.safe), "{d:?}");
}

const ERRORS: &[&str] = &[
    "",
    "connection refused",
    "timed out after 5s",
    "panic: called `Option::unwrap()` on a `None` value",
    "out of memory",
    "No space left on device",
    "config parse error at line 3",
    "exit status 1",
    "kv_store is not running",
];

fn evidence() -> impl Strategy<Value = Evidence> {
    (
        0usize..ERRORS.len(),
        0.0f64..100.0,
        0.0f64..100.0,
        prop::option::of(0.0f64..100.0),
        prop::collection::vec(
            prop::sample::select(vec!["kv_store", "message_bus", "model"]),
            0..3,
        ),
        prop::collection::vec(prop::sample::select(vec!["worker", "grace.toml"]), 0..2),
        any::<bool>(),
        0u64..10,
    )
        .prop_map(|(err, cpu, mem, disk, deps, drifts, is_kernel, restarts)| {
            let mut e = base(Some(ERRORS[err]).filter(|s| !s.is_empty()));
            e.resources.cpu_percent = cpu;
            e.resources.memory_percent = mem;
            e.resources.disk_percent = disk;
            let mut deps = deps;
            deps.dedup();
            e.dependencies_down = deps.into_iter().map(down).collect();
            e.drift = drifts.into_iter().map(drift).collect();
            e.kernel = is_kernel.then(|| kernel(restarts, None));
            e
        })
}

proptest! {
    #[test]
    fn every_diagnosis_is_well_formed(e in evidence()) {
        let d = classify(&e);
        prop_assert_eq!(&d, &classify(&e), "deterministic");
        prop_assert!((0.0..=1.0).contains(&d.confidence));
        prop_assert!(!d.fixes.is_empty());
        let best = d.candidates.first().map_or(0.0, |c| c.score);
        prop_assert_eq!(d.root_cause == RootCause::Unknown, best < MIN_CONFIDENCE);
        for w in d.candidates.windows(2) {
            prop_assert!(w[0].score >= w[1].score);
        }
        for f in &d.fixes {
            match &f.action {
                FixAction::RestartDependency { kernel } => {
                    prop_assert!(f.safe);
                    prop_assert!(e.dependencies_down.iter().any(|x| &x.name == kernel));
                }
                FixAction::RestartComponent { kernel }
                | FixAction::ShedLoad { kernel }
                | FixAction::ClearCaches { kernel } => {
                    prop_assert!(f.safe);
                    prop_assert_eq!(kernel, &e.component);
                    prop_assert!(e.kernel.is_some(), "kernel fixes only for kernels");
                }
                _ => prop_assert!(!f.safe, "{:?} must be escalated", f.action),
            }
        }
        if d.root_cause == RootCause::Dependency {
            let first_restart = d.fixes.iter().position(|f| matches!(f.action, FixAction::RestartComponent { .. }));
            let last_dep = d.fixes.iter().rposition(|f| matches!(f.action, FixAction::RestartDependency { .. }));
            if let (Some(c), Some(dep)) = (first_restart, last_dep) {
                prop_assert!(dep < c, "dependencies are restarted first");
            }
        }
    }
}
