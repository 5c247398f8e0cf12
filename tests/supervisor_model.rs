//! Model-based test: random sequences of crashes, normal exits, explicit operations,
//! failing starts and shutdowns, applied both to the reference model of OTP's
//! supervisor (`otp_model`) and to a real supervisor with real kernels; after
//! every step, which children exist and run, their restart counts and how the
//! supervisor ended must agree.
//!
//! `PROPTEST_CASES=2000 cargo test --test supervisor_model` runs a longer search.

mod otp_model;
mod supervisor_util;

use std::time::Duration;

use grace::kernel::{Fault, KernelState, Request};
use grace::supervisor::{
    AutoShutdown, ChildSpec, RestartType, Strategy as SupStrategy, SupervisorError, SupervisorExit,
    SupervisorHandle, SupervisorSpec,
};
use grace::tree::System;
use otp_model::{Auto, Exit, Model, Reply, Restart, Strategy as MStrategy};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use supervisor_util::{system, Probe, StartPlan};

/// How long the real supervisor may take to reach the state the model predicts.
const SETTLE: Duration = Duration::from_secs(3);
/// Child ids: a small pool, so that operations often name existing children.
const IDS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];

#[derive(Debug, Clone)]
enum Op {
    Crash(Index),
    Exit(Index),
    Terminate(usize),
    RestartChild(usize),
    Delete(usize),
    Force(usize),
    Start(usize, Restart, bool),
    FailStarts(usize, u32),
    Shutdown,
}

#[derive(Debug, Clone)]
struct Case {
    strategy: MStrategy,
    max_restarts: u32,
    auto: Auto,
    children: Vec<(Restart, bool)>,
    ops: Vec<Op>,
}

fn arb_restart() -> impl Strategy<Value = Restart> {
    prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    let id = 0..IDS.len();
    prop_oneof![
        4 => any::<Index>().prop_map(Op::Crash),
        2 => any::<Index>().prop_map(Op::Exit),
        1 => id.clone().prop_map(Op::Terminate),
        1 => id.clone().prop_map(Op::RestartChild),
        1 => id.clone().prop_map(Op::Delete),
        1 => id.clone().prop_map(Op::Force),
        1 => (id.clone(), arb_restart(), any::<bool>()).prop_map(|(i, r, s)| Op::Start(i, r, s)),
        1 => (id, 1u32..3).prop_map(|(i, n)| Op::FailStarts(i, n)),
        1 => Just(Op::Shutdown),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(MStrategy::OneForOne),
            Just(MStrategy::OneForAll),
            Just(MStrategy::RestForOne)
        ],
        0u32..6,
        prop_oneof![
            2 => Just(Auto::Never),
            1 => Just(Auto::AnySignificant),
            1 => Just(Auto::AllSignificant)
        ],
        prop::collection::vec((arb_restart(), any::<bool>()), 1..5),
        prop::collection::vec(arb_op(), 1..24),
    )
        .prop_map(|(strategy, max_restarts, auto, children, ops)| Case {
            strategy,
            max_restarts,
            auto,
            children,
            ops,
        })
}

fn restart_type(r: Restart) -> RestartType {
    match r {
        Restart::Permanent => RestartType::Permanent,
        Restart::Transient => RestartType::Transient,
        Restart::Temporary => RestartType::Temporary,
    }
}

fn reply_of<T>(r: Result<T, SupervisorError>) -> Reply {
    match r {
        Ok(_) => Reply::Ok,
        Err(SupervisorError::NoSuchChild(_)) => Reply::NoSuchChild,
        Err(SupervisorError::AlreadyExists(_)) => Reply::AlreadyExists,
        Err(SupervisorError::Running(_)) => Reply::Running,
        Err(SupervisorError::Restarting(_)) => Reply::Restarting,
        Err(SupervisorError::StillRunning(_)) => Reply::StillRunning,
        Err(SupervisorError::StartFailed { .. }) => Reply::StartFailed,
        Err(SupervisorError::InvalidSpec { .. }) => Reply::InvalidSpec,
        Err(e) => panic!("an answer the model does not know: {e}"),
    }
}

/// What the test compares: how the supervisor ended, or else its children as
/// (id, running, restarts) in start order.
#[derive(Debug, PartialEq)]
enum Seen {
    Ended(Exit),
    Children(Vec<(String, bool, u64)>),
}

fn expected(m: &Model) -> Seen {
    match m.exit {
        Some(e) => Seen::Ended(e),
        None => Seen::Children(
            m.children
                .iter()
                .map(|c| (c.id.clone(), c.running, c.restarts))
                .collect(),
        ),
    }
}

async fn observe(sup: &SupervisorHandle) -> Option<Seen> {
    match sup.exit_now() {
        Some(SupervisorExit::Normal) => return Some(Seen::Ended(Exit::Normal)),
        Some(SupervisorExit::Failed(_)) => return Some(Seen::Ended(Exit::Failed)),
        Some(SupervisorExit::AutoShutdown(_)) => return Some(Seen::Ended(Exit::AutoShutdown)),
        Some(SupervisorExit::Killed) => return None,
        None => {}
    }
    let kids = sup.which_children().await.ok()?;
    Some(Seen::Children(
        kids.into_iter()
            .map(|c| (c.id, c.state == KernelState::Running, c.restarts))
            .collect(),
    ))
}

/// Polls the real supervisor until it shows what the model expects.
async fn settle(sup: &SupervisorHandle, model: &Model, step: &str) -> Result<(), String> {
    let want = expected(model);
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let seen = observe(sup).await;
        if seen.as_ref() == Some(&want) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "{step}: the model expects {want:?}, the supervisor shows {seen:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn child_spec(probe: &Probe, id: &str, r: Restart, significant: bool) -> ChildSpec {
    ChildSpec::kernel(probe.kernel(id))
        .restart(restart_type(r))
        .significant(significant)
}

/// The running child picked by `ix`, if any runs.
fn running(model: &Model, ix: &Index) -> Option<usize> {
    let up: Vec<usize> = (0..model.children.len())
        .filter(|&i| model.children[i].running)
        .collect();
    (!up.is_empty()).then(|| up[ix.index(up.len())])
}

async fn run_case(case: Case) -> Result<(), String> {
    let (sys, _dir) = system();
    let probe = Probe::default();
    let auto = match case.auto {
        Auto::Never => AutoShutdown::Never,
        Auto::AnySignificant => AutoShutdown::AnySignificant,
        Auto::AllSignificant => AutoShutdown::AllSignificant,
    };
    let strategy = match case.strategy {
        MStrategy::OneForOne => SupStrategy::OneForOne,
        MStrategy::OneForAll => SupStrategy::OneForAll,
        MStrategy::RestForOne => SupStrategy::RestForOne,
    };
    let mut model = Model::new(case.strategy, case.max_restarts, case.auto);
    let mut spec = SupervisorSpec::new("model", strategy)
        .intensity(case.max_restarts, Duration::from_secs(3600))
        .auto_shutdown(auto);
    for (i, &(r, significant)) in case.children.iter().enumerate() {
        let significant = significant && model.valid(r, true);
        spec = spec.child(child_spec(&probe, IDS[i], r, significant));
        model.start_child(IDS[i], r, significant);
    }
    let sup = SupervisorHandle::start(spec, sys.clone())
        .await
        .map_err(|e| format!("start: {e}"))?;
    settle(&sup, &model, "start").await?;
    for (n, op) in case.ops.iter().enumerate() {
        if model.exit.is_some() {
            break;
        }
        let step = format!("step {n} ({op:?})");
        let (want, got) = apply(op, &mut model, &sys, &sup, &probe).await;
        if want != got {
            return Err(format!(
                "{step}: the model answers {want:?}, the supervisor {got:?}"
            ));
        }
        settle(&sup, &model, &step).await?;
    }
    if model.exit.is_none() {
        let _ = sup.shutdown(SETTLE).await;
    }
    Ok(())
}

/// Applies one operation to both; returns (model's answer, supervisor's answer).
async fn apply(
    op: &Op,
    model: &mut Model,
    sys: &System,
    sup: &SupervisorHandle,
    probe: &Probe,
) -> (Reply, Reply) {
    match op {
        Op::Crash(ix) | Op::Exit(ix) => {
            let Some(i) = running(model, ix) else {
                return (Reply::Ok, Reply::Ok);
            };
            let id = model.children[i].id.clone();
            let crash = matches!(op, Op::Crash(_));
            let sent = if crash {
                sys.registry.inject(&id, Fault::Error("model crash".into()))
            } else {
                sys.registry.cast(&id, Request::new("exit", Value::Null))
            };
            sent.unwrap_or_else(|e| panic!("{id} should be running: {e}"));
            model.exit_child(i, crash);
            (Reply::Ok, Reply::Ok)
        }
        Op::Terminate(i) => (
            model.terminate_child(IDS[*i]),
            reply_of(sup.terminate_child(IDS[*i]).await),
        ),
        Op::RestartChild(i) => (
            model.restart_child(IDS[*i]),
            reply_of(sup.restart_child(IDS[*i]).await),
        ),
        Op::Delete(i) => (
            model.delete_child(IDS[*i]),
            reply_of(sup.delete_child(IDS[*i]).await),
        ),
        Op::Force(i) => (
            model.force_restart(IDS[*i]),
            reply_of(sup.force_restart(IDS[*i], "model").await),
        ),
        Op::Start(i, r, significant) => (
            model.start_child(IDS[*i], *r, *significant),
            reply_of(
                sup.start_child(child_spec(probe, IDS[*i], *r, *significant))
                    .await,
            ),
        ),
        Op::FailStarts(i, n) => {
            model.fail_starts(IDS[*i], *n);
            probe.plan_starts(
                IDS[*i],
                StartPlan {
                    fail: *n,
                    ..StartPlan::default()
                },
            );
            (Reply::Ok, Reply::Ok)
        }
        Op::Shutdown => {
            model.shutdown();
            let r = sup.shutdown(SETTLE).await;
            let ok = matches!(r, Ok(SupervisorExit::Normal));
            (Reply::Ok, if ok { Reply::Ok } else { Reply::StartFailed })
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_supervisor_agrees_with_the_model(case in arb_case()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = rt.block_on(run_case(case));
        prop_assert!(outcome.is_ok(), "{}", outcome.err().unwrap_or_default());
    }
}
