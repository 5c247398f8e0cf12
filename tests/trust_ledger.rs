//! The trust ledger with a real bus, audit log and state directory: events, audit
//! records, bounds, persistence across reopen, and a damaged `trust.json`.

use std::sync::Arc;
use std::time::Duration;

use grace::audit::{read_all, AuditConfig, AuditLog};
use grace::bus::{Bus, Topic};
use grace::state::StatePaths;
use grace::trust::{Change, TrustConfig, TrustLedger, TrustUpdate};
use proptest::prelude::*;

fn ledger(paths: &StatePaths, bus: &Bus) -> TrustLedger {
    paths.create().expect("state dir");
    let audit =
        Arc::new(AuditLog::open(&paths.audit_log(), &AuditConfig::default()).expect("audit"));
    TrustLedger::open(
        bus.clone(),
        audit,
        &paths.trust_json(),
        &TrustConfig::default(),
    )
    .expect("ledger")
}

#[tokio::test]
async fn every_change_is_published_and_audited() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let bus = Bus::default();
    let sub = bus.subscribe("test", &["trust.*"]);
    let l = ledger(&paths, &bus);

    assert_eq!(l.score("worker"), 1.0);
    let u = l
        .penalize("worker", "playbook restart_kernel failed")
        .expect("penalize");
    assert_eq!((u.previous, u.score), (1.0, 0.85));
    assert!((u.delta + 0.15).abs() < 1e-12);
    l.penalize_repeat("worker", "heartbeat_failure repeated")
        .expect("repeat");
    let r = l
        .reward("worker", "playbook restart_kernel succeeded")
        .expect("reward");
    assert!((r.score - 0.85).abs() < 1e-9, "{r:?}");
    // At the upper bound a reward changes nothing and publishes nothing.
    let none = l.reward("kv", "ok").expect("reward");
    assert_eq!(none.delta, 0.0);

    assert_eq!(bus.pump(64, Duration::from_millis(100)).await, 3);
    let mut got = Vec::new();
    while let Some(e) = sub.try_recv() {
        assert_eq!(e.topic, Topic::TrustScoreUpdate);
        assert_eq!(e.component.as_deref(), Some("worker"));
        got.push(serde_json::from_value::<TrustUpdate>(e.payload).expect("payload"));
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].reason, "playbook restart_kernel failed");
    assert_eq!(got[2].previous, got[1].score);

    let audit = read_all(&paths.audit_log()).expect("audit");
    let kinds: Vec<&str> = audit.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["trust.score.update"; 3]);
    assert_eq!(audit[0].data["component"], "worker");
    assert_eq!(l.below_threshold(), vec![]);
}

#[test]
fn scores_survive_a_reopen_and_a_damaged_file_is_moved_aside() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    let bus = Bus::default();
    {
        let l = ledger(&paths, &bus);
        for _ in 0..3 {
            l.penalize("model", "restore failed").expect("penalize");
        }
        assert!((l.score("model") - 0.55).abs() < 1e-9);
    }
    let l = ledger(&paths, &bus);
    assert!((l.score("model") - 0.55).abs() < 1e-9);
    assert_eq!(l.below_threshold().len(), 1);
    assert_eq!(l.all().len(), 1);
    drop(l);

    std::fs::write(paths.trust_json(), b"{ not json").expect("damage");
    let l = ledger(&paths, &bus);
    assert_eq!(l.score("model"), 1.0, "starts from the initial scores");
    let kept: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept");
    let audit = read_all(&paths.audit_log()).expect("audit");
    assert_eq!(audit.last().expect("record").kind, "trust.reset");
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Reward),
        Just(Change::Failure),
        Just(Change::RepeatedIncident),
        (-2.0f64..2.0).prop_map(Change::By),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn the_ledger_keeps_every_score_in_zero_to_one(changes in prop::collection::vec(change(), 1..15)) {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        let l = ledger(&paths, &Bus::default());
        for (k, ch) in changes.iter().enumerate() {
            let u = l.adjust("c", *ch, &format!("change {k}")).expect("adjust");
            prop_assert!((0.0..=1.0).contains(&u.score));
            prop_assert!((u.score - u.previous - u.delta).abs() < 1e-12);
        }
        let reopened = ledger(&paths, &Bus::default());
        prop_assert_eq!(reopened.score("c"), l.score("c"));
    }
}
