//! The restart strategy as a plain function: given a failed child, how it exited and its
//! siblings, which children are stopped and which are started again.
//!
//! No runtime here: the supervisor actor builds a [`ChildView`] per child, asks [`plan`]
//! and carries the [`Plan`] out.

use super::spec::{RestartType, Strategy};

/// How a child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// A stop (OTP `normal`/`shutdown`).
    Normal,
    /// A panic, an error, a kill: anything but a stop.
    Abnormal,
}

/// Whether a child runs, as the strategy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Running: a sibling restart must stop it first.
    Running,
    /// Down, with a restart due (backoff, a start to try again): a sibling restart
    /// starts it too.
    Pending,
    /// Down and staying down (terminated, exited for good, left down, ignored): a
    /// sibling restart starts it again unless it is temporary (OTP restarts every
    /// non-temporary child in scope).
    Down,
}

/// What the strategy needs to know of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildView {
    /// Its restart type.
    pub restart: RestartType,
    /// Whether it runs.
    pub run: Run,
}

/// What to do after a child exited. `K` identifies children (an index or a key that
/// sorts in start order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// Whether anything is restarted at all; when false the failed child simply stays
    /// down and no sibling is touched (OTP: a temporary child, or a transient one that
    /// exited normally). Only a restarting plan counts toward intensity.
    pub restarts: bool,
    /// Running siblings to stop, in reverse start order.
    pub stop: Vec<K>,
    /// Children to start again, in start order (the failed child included).
    pub restart: Vec<K>,
    /// Temporary siblings stopped by this plan: they stay down.
    pub retire: Vec<K>,
}

impl<K> Plan<K> {
    fn nothing() -> Plan<K> {
        Plan {
            restarts: false,
            stop: Vec::new(),
            restart: Vec::new(),
            retire: Vec::new(),
        }
    }
}

/// Whether a child of this restart type is restarted after this kind of exit.
pub fn should_restart(restart: RestartType, exit: ExitKind) -> bool {
    match restart {
        RestartType::Permanent => true,
        RestartType::Transient => exit == ExitKind::Abnormal,
        RestartType::Temporary => false,
    }
}

/// Which children a strategy touches, relative to the failed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The failed child only.
    Only,
    /// The failed child and every child started after it.
    After,
    /// Every child.
    All,
}

/// The scope of a strategy: the caller need pass [`plan`] only these children.
pub fn scope(strategy: Strategy) -> Scope {
    match strategy {
        Strategy::OneForOne => Scope::Only,
        Strategy::RestForOne => Scope::After,
        Strategy::OneForAll => Scope::All,
    }
}

/// Decides what follows the exit of `failed`.
///
/// `children` are the supervisor's children in start order, the failed one included;
/// the caller may pass only those within [`scope`] of the strategy (for `one_for_one`,
/// just the failed child), which keeps a failure O(1) in a supervisor of many children.
/// `force` restarts the failed child whatever its restart type (an explicit restart).
pub fn plan<K: Copy + Eq>(
    strategy: Strategy,
    failed: K,
    exit: ExitKind,
    force: bool,
    children: impl IntoIterator<Item = (K, ChildView)>,
) -> Plan<K> {
    let mut out = Plan::nothing();
    let scope = scope(strategy);
    let mut seen_failed = false;
    for (key, view) in children {
        if key == failed {
            seen_failed = true;
            if !(force || should_restart(view.restart, exit)) {
                // OTP: nothing else happens when a child that is not to be restarted
                // exits, whatever the strategy.
                return Plan::nothing();
            }
            out.restarts = true;
            out.restart.push(key);
            continue;
        }
        let in_scope = match scope {
            Scope::Only => false,
            Scope::After => seen_failed,
            Scope::All => true,
        };
        if !in_scope {
            continue;
        }
        match view.run {
            Run::Down => {
                if view.restart != RestartType::Temporary {
                    out.restart.push(key);
                }
            }
            Run::Running => {
                out.stop.push(key);
                if view.restart == RestartType::Temporary {
                    out.retire.push(key);
                } else {
                    out.restart.push(key);
                }
            }
            Run::Pending => {
                if view.restart == RestartType::Temporary {
                    out.retire.push(key);
                } else {
                    out.restart.push(key);
                }
            }
        }
    }
    if !seen_failed {
        return Plan::nothing();
    }
    out.stop.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::{plan, scope, should_restart, ChildView, ExitKind, Plan, Run, Scope};
    use crate::supervisor::spec::{RestartType, Strategy as S};
    use proptest::prelude::*;

    fn view(restart: RestartType, run: Run) -> ChildView {
        ChildView { restart, run }
    }

    fn all(children: &[ChildView]) -> impl Iterator<Item = (usize, ChildView)> + '_ {
        children.iter().copied().enumerate()
    }

    const P: RestartType = RestartType::Permanent;
    const T: RestartType = RestartType::Transient;
    const TMP: RestartType = RestartType::Temporary;

    #[test]
    fn one_for_one_touches_only_the_failed_child() {
        let c = [
            view(P, Run::Running),
            view(P, Run::Running),
            view(P, Run::Running),
        ];
        let p = plan(S::OneForOne, 1, ExitKind::Abnormal, false, all(&c));
        assert!(p.restarts);
        assert_eq!((p.stop, p.restart), (vec![], vec![1]));
    }

    #[test]
    fn one_for_all_stops_the_others_in_reverse_and_restarts_in_order() {
        let c = [
            view(P, Run::Running),
            view(T, Run::Running),
            view(P, Run::Running),
        ];
        let p = plan(S::OneForAll, 1, ExitKind::Abnormal, false, all(&c));
        assert_eq!(p.stop, vec![2, 0]);
        assert_eq!(p.restart, vec![0, 1, 2]);
    }

    #[test]
    fn rest_for_one_takes_the_later_children_only() {
        let c = [
            view(P, Run::Running),
            view(P, Run::Running),
            view(P, Run::Running),
            view(P, Run::Running),
        ];
        let p = plan(S::RestForOne, 1, ExitKind::Abnormal, false, all(&c));
        assert_eq!(p.stop, vec![3, 2]);
        assert_eq!(p.restart, vec![1, 2, 3]);
    }

    #[test]
    fn a_temporary_sibling_taken_down_is_not_restarted() {
        let c = [
            view(P, Run::Running),
            view(TMP, Run::Running),
            view(P, Run::Running),
        ];
        let p = plan(S::OneForAll, 0, ExitKind::Abnormal, false, all(&c));
        assert_eq!(p.stop, vec![2, 1]);
        assert_eq!(p.restart, vec![0, 2]);
        assert_eq!(p.retire, vec![1]);
    }

    #[test]
    fn restart_types_follow_otp() {
        for (r, exit, expected) in [
            (P, ExitKind::Normal, true),
            (P, ExitKind::Abnormal, true),
            (T, ExitKind::Normal, false),
            (T, ExitKind::Abnormal, true),
            (TMP, ExitKind::Normal, false),
            (TMP, ExitKind::Abnormal, false),
        ] {
            assert_eq!(should_restart(r, exit), expected, "{r:?} after {exit:?}");
        }
    }

    #[test]
    fn a_child_not_to_be_restarted_leaves_its_siblings_alone() {
        let c = [
            view(P, Run::Running),
            view(T, Run::Running),
            view(P, Run::Running),
        ];
        let p = plan(S::OneForAll, 1, ExitKind::Normal, false, all(&c));
        assert_eq!(p, Plan::nothing());
    }

    #[test]
    fn forced_restart_of_a_temporary_child() {
        let c = [view(TMP, Run::Running)];
        let p = plan(S::OneForOne, 0, ExitKind::Abnormal, true, all(&c));
        assert_eq!(p.restart, vec![0]);
    }

    #[test]
    fn children_down_on_purpose_and_pending_ones_are_started_with_the_group() {
        let c = [
            view(P, Run::Running),
            view(T, Run::Down),
            view(P, Run::Pending),
            view(TMP, Run::Down),
            view(P, Run::Running),
        ];
        let p = plan(S::OneForAll, 4, ExitKind::Abnormal, false, all(&c));
        assert_eq!(p.stop, vec![0]);
        assert_eq!(p.restart, vec![0, 1, 2, 4]);
        assert!(p.retire.is_empty());
    }

    fn arb_view() -> impl Strategy<Value = ChildView> {
        (
            prop_oneof![Just(P), Just(T), Just(TMP)],
            prop_oneof![Just(Run::Running), Just(Run::Pending), Just(Run::Down)],
        )
            .prop_map(|(restart, run)| ChildView { restart, run })
    }

    fn arb_strategy() -> impl Strategy<Value = S> {
        prop_oneof![Just(S::OneForOne), Just(S::OneForAll), Just(S::RestForOne)]
    }

    proptest! {
        #[test]
        fn plans_are_well_formed(
            children in prop::collection::vec(arb_view(), 1..12),
            pick in any::<prop::sample::Index>(),
            strategy in arb_strategy(),
            abnormal in any::<bool>(),
        ) {
            let failed = pick.index(children.len());
            let exit = if abnormal { ExitKind::Abnormal } else { ExitKind::Normal };
            let p = plan(strategy, failed, exit, false, all(&children));
            let restart_failed = should_restart(children[failed].restart, exit);
            prop_assert_eq!(p.restarts, restart_failed);
            if !restart_failed {
                prop_assert!(p.stop.is_empty() && p.restart.is_empty() && p.retire.is_empty());
            } else {
                prop_assert!(p.restart.contains(&failed));
                prop_assert!(!p.stop.contains(&failed));
            }
            // Orders: stops in reverse start order, restarts in start order.
            prop_assert!(p.stop.windows(2).all(|w| w[0] > w[1]));
            prop_assert!(p.restart.windows(2).all(|w| w[0] < w[1]));
            for &i in &p.stop {
                prop_assert_eq!(children[i].run, Run::Running);
            }
            for &i in &p.restart {
                if i != failed {
                    prop_assert!(children[i].restart != TMP, "temporary sibling restarted");
                }
            }
            for &i in &p.retire {
                prop_assert_eq!(children[i].restart, TMP);
                prop_assert!(!p.restart.contains(&i));
            }
            let touched = p.stop.iter().chain(&p.restart).chain(&p.retire);
            match strategy {
                S::OneForOne => {
                    prop_assert!(p.stop.is_empty());
                    prop_assert!(p.restart.len() <= 1);
                }
                S::RestForOne => {
                    for &i in touched { prop_assert!(i >= failed); }
                }
                S::OneForAll => {
                    // Every non-temporary child is restarted, every running or pending
                    // temporary one retired, exactly once.
                    for (i, c) in children.iter().enumerate() {
                        let untouched = c.run == Run::Down && c.restart == TMP;
                        if i == failed || untouched || !restart_failed { continue; }
                        let n = p.restart.contains(&i) as u8 + p.retire.contains(&i) as u8;
                        prop_assert_eq!(n, 1);
                    }
                }
            }
        }

        #[test]
        fn passing_only_the_scope_gives_the_same_plan(
            children in prop::collection::vec(arb_view(), 1..12),
            pick in any::<prop::sample::Index>(),
            strategy in arb_strategy(),
        ) {
            let failed = pick.index(children.len());
            let full = plan(strategy, failed, ExitKind::Abnormal, false, all(&children));
            let scoped: Vec<(usize, ChildView)> = match scope(strategy) {
                Scope::Only => vec![(failed, children[failed])],
                Scope::After => all(&children).skip(failed).collect(),
                Scope::All => all(&children).collect(),
            };
            let part = plan(strategy, failed, ExitKind::Abnormal, false, scoped);
            prop_assert_eq!(full, part);
        }
    }
}
