//! Random cases for the model-based tests: a supervisor's strategy, intensity,
//! `auto_shutdown` and children, and a sequence of operations on it.

use proptest::prelude::*;
use proptest::sample::Index;

use super::{Auto, Model, Restart, Strategy as MStrategy};

/// Child ids: a small pool, so that operations often name existing children.
pub const IDS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];

#[derive(Debug, Clone)]
pub enum Op {
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
pub struct Case {
    pub strategy: MStrategy,
    pub max_restarts: u32,
    pub auto: Auto,
    pub children: Vec<(Restart, bool)>,
    pub ops: Vec<Op>,
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

pub fn arb_case() -> impl Strategy<Value = Case> {
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

/// The running child picked by `ix`, if any runs.
pub fn running(model: &Model, ix: &Index) -> Option<usize> {
    let up: Vec<usize> = (0..model.children.len())
        .filter(|&i| model.children[i].running)
        .collect();
    (!up.is_empty()).then(|| up[ix.index(up.len())])
}
