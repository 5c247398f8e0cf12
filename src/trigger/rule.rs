//! The decision every trigger shares, as a plain function of observations over time:
//! a `for` duration (Prometheus alerting rules), local deduplication (re-publish at most
//! every `repeat_interval`) and flap detection (see [`super::flap`]).

use std::time::Duration;

use super::flap::{flap_transition, FlapChange, FlapHistory, FlapThresholds};

/// How a trigger's conditions become publications.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// How often the trigger checks (its heartbeat interval).
    pub interval: Duration,
    /// How long a condition must hold before it fires; a check that finds it cleared
    /// starts the wait again.
    pub hold_for: Duration,
    /// Least time between two publications of a condition that keeps holding.
    pub repeat_interval: Duration,
    /// Flap detection.
    pub flap: FlapThresholds,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            interval: Duration::from_secs(5),
            hold_for: Duration::ZERO,
            repeat_interval: Duration::from_secs(300),
            flap: FlapThresholds::default(),
        }
    }
}

/// The remembered state of one condition (one trigger, component and failure mode).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// When the condition began to hold (monotonic ms), while it holds.
    pending_since: Option<u64>,
    /// When it was last published in the current episode (monotonic ms).
    last_published: Option<u64>,
    history: FlapHistory,
    flapping: bool,
    published: u64,
}

/// What one observation decides.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Step {
    /// Publish the condition now.
    pub publish: Option<Publish>,
    /// The flapping state changed.
    pub flap: Option<FlapChange>,
    /// The condition holds and is due, but flapping suppresses it.
    pub suppressed: bool,
}

/// A publication decided by [`Gate::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// When the condition began to hold (monotonic ms), for `detected_at`.
    pub since: u64,
    /// 1 for the first publication of an episode, then 2, 3, ...
    pub occurrence: u64,
}

impl Gate {
    /// Feeds one check result at monotonic time `now_ms`; `hold_for` is the condition's
    /// `for` duration (the rule's, or the condition's own).
    pub fn observe(&mut self, holds: bool, now_ms: u64, hold_for: Duration, rule: &Rule) -> Step {
        let mut step = Step::default();
        self.history.push(holds);
        if let Some(change) = flap_transition(self.flapping, self.history.percent(), &rule.flap) {
            self.flapping = matches!(change, FlapChange::Started(_));
            step.flap = Some(change);
        }
        if !holds {
            self.pending_since = None;
            self.last_published = None;
            self.published = 0;
            return step;
        }
        let since = *self.pending_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) < millis(hold_for) {
            return step;
        }
        let due = match self.last_published {
            None => true,
            Some(last) => now_ms.saturating_sub(last) >= millis(rule.repeat_interval),
        };
        if !due {
            return step;
        }
        if self.flapping {
            step.suppressed = true;
            return step;
        }
        self.last_published = Some(now_ms);
        self.published += 1;
        step.publish = Some(Publish {
            since,
            occurrence: self.published,
        });
        step
    }

    /// Whether the condition is flapping now.
    pub fn flapping(&self) -> bool {
        self.flapping
    }

    /// The weighted percent state change now.
    pub fn percent(&self) -> f64 {
        self.history.percent()
    }

    /// The remembered check results, oldest first.
    pub fn history(&self) -> String {
        self.history.render()
    }

    /// Whether the gate remembers nothing worth keeping: the condition does not hold,
    /// is not flapping, and held in none of the remembered checks.
    pub fn idle(&self) -> bool {
        self.pending_since.is_none() && !self.flapping && !self.history.any()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(hold_for: u64, repeat: u64) -> Rule {
        Rule {
            interval: Duration::from_millis(10),
            hold_for: Duration::from_millis(hold_for),
            repeat_interval: Duration::from_millis(repeat),
            flap: FlapThresholds::default(),
        }
    }

    #[test]
    fn fires_only_after_the_condition_held_for_its_duration() {
        let r = rule(100, 1000);
        let mut g = Gate::default();
        assert!(g.observe(true, 0, r.hold_for, &r).publish.is_none());
        assert!(g.observe(true, 50, r.hold_for, &r).publish.is_none());
        let p = g.observe(true, 100, r.hold_for, &r).publish;
        assert_eq!(
            p,
            Some(Publish {
                since: 0,
                occurrence: 1
            })
        );
    }

    #[test]
    fn a_cleared_condition_restarts_the_wait() {
        let r = rule(100, 1000);
        let mut g = Gate::default();
        g.observe(true, 0, r.hold_for, &r);
        g.observe(false, 60, r.hold_for, &r);
        assert!(g.observe(true, 120, r.hold_for, &r).publish.is_none());
        assert!(g.observe(true, 200, r.hold_for, &r).publish.is_none());
        assert!(g.observe(true, 220, r.hold_for, &r).publish.is_some());
    }

    #[test]
    fn repeats_at_most_every_repeat_interval() {
        let r = rule(0, 100);
        let mut g = Gate::default();
        let fired: Vec<u64> = (0..30)
            .map(|i| i * 10)
            .filter(|t| g.observe(true, *t, r.hold_for, &r).publish.is_some())
            .collect();
        assert_eq!(fired, vec![0, 100, 200]);
    }

    #[test]
    fn toggling_is_reported_as_flapping_and_suppressed() {
        let r = rule(0, 0);
        let mut g = Gate::default();
        let mut started = None;
        let mut published_after_start = 0;
        for i in 0..40u64 {
            let s = g.observe(i % 2 == 0, i * 10, r.hold_for, &r);
            if let Some(FlapChange::Started(_)) = s.flap {
                started = Some(i);
            }
            if started.is_some() && s.publish.is_some() {
                published_after_start += 1;
            }
        }
        assert!(started.is_some_and(|i| i < 21), "started {started:?}");
        assert!(g.flapping());
        assert_eq!(published_after_start, 0);
        // Steady again: flapping stops after the history calms down, then it fires.
        let mut stopped = false;
        let mut fired = false;
        for i in 40..80u64 {
            let s = g.observe(true, i * 10, r.hold_for, &r);
            stopped |= matches!(s.flap, Some(FlapChange::Stopped(_)));
            fired |= s.publish.is_some();
        }
        assert!(stopped && fired);
    }

    /// A sequence of (gap since the previous check in ms, holds).
    fn checks() -> impl Strategy<Value = Vec<(u64, bool)>> {
        proptest::collection::vec((1u64..200, any::<bool>()), 1..120)
    }

    proptest! {
        #[test]
        fn never_fires_before_holding_for_its_duration(seq in checks(), hold in 0u64..500) {
            let r = Rule { flap: FlapThresholds { enabled: false, ..Default::default() }, ..rule(hold, 50) };
            let mut g = Gate::default();
            let (mut now, mut since) = (0u64, None::<u64>);
            for (gap, holds) in seq {
                now += gap;
                since = if holds { Some(since.unwrap_or(now)) } else { None };
                if let Some(p) = g.observe(holds, now, r.hold_for, &r).publish {
                    let s = since.expect("holds");
                    prop_assert_eq!(p.since, s);
                    prop_assert!(now - s >= hold);
                }
            }
        }

        #[test]
        fn publications_of_one_episode_are_spaced_by_repeat_interval(seq in checks(), repeat in 0u64..400) {
            let r = Rule { flap: FlapThresholds { enabled: false, ..Default::default() }, ..rule(0, repeat) };
            let mut g = Gate::default();
            let (mut now, mut last) = (0u64, None::<u64>);
            for (gap, holds) in seq {
                now += gap;
                if !holds { last = None; }
                if g.observe(holds, now, r.hold_for, &r).publish.is_some() {
                    if let Some(l) = last { prop_assert!(now - l >= repeat); }
                    last = Some(now);
                } else if holds && last.is_none() {
                    prop_assert!(false, "a holding condition with no for must fire at once");
                }
            }
        }

        #[test]
        fn nothing_is_published_while_flapping(seq in checks()) {
            let r = rule(0, 0);
            let mut g = Gate::default();
            let mut now = 0;
            for (gap, holds) in seq {
                now += gap;
                let s = g.observe(holds, now, r.hold_for, &r);
                if g.flapping() { prop_assert!(s.publish.is_none()); }
                if s.suppressed { prop_assert!(g.flapping() && holds); }
            }
        }

        #[test]
        fn a_quiet_gate_becomes_idle(seq in checks()) {
            let r = rule(0, 0);
            let mut g = Gate::default();
            let mut now = 0;
            for (gap, holds) in seq {
                now += gap;
                g.observe(holds, now, r.hold_for, &r);
            }
            for _ in 0..40 {
                now += 10;
                g.observe(false, now, r.hold_for, &r);
            }
            prop_assert!(g.idle());
        }
    }
}
