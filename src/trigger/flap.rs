//! Flap detection, as Nagios does it: the weighted percent of state changes over the
//! last 21 checks, with hysteresis between a high and a low threshold.
//!
//! Nagios keeps the last 21 check results, counts the 20 transitions between them, and
//! weighs each change linearly from 0.75 (oldest) to 1.25 (newest), so that recent
//! toggling counts more than old toggling. The sum, scaled to 0–100, is the percent
//! state change. A condition starts flapping when it reaches the high threshold and
//! stops when it falls below the low one.

use serde::{Deserialize, Serialize};

/// Checks remembered (Nagios' `MAX_STATE_HISTORY_ENTRIES`).
pub const HISTORY: u32 = 21;
const MASK: u32 = (1 << HISTORY) - 1;
/// Weight of the oldest transition.
const LOW_CURVE: f64 = 0.75;
/// Weight of the newest transition.
const HIGH_CURVE: f64 = 1.25;

/// Thresholds of flap detection, in percent state change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlapThresholds {
    /// Whether flap detection runs at all.
    pub enabled: bool,
    /// A condition at or above this starts flapping (Nagios default 50).
    pub high: f64,
    /// A flapping condition below this stops flapping (Nagios default 25).
    pub low: f64,
}

impl Default for FlapThresholds {
    fn default() -> Self {
        FlapThresholds {
            enabled: true,
            high: 50.0,
            low: 25.0,
        }
    }
}

/// The last [`HISTORY`] check results of one condition, newest in bit 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlapHistory {
    bits: u32,
}

/// The failure mode of the early warning a trigger publishes when one of its
/// conditions starts flapping. The dispatcher never remediates it: it notifies.
pub const FLAPPING: &str = "flapping";

/// A change of flapping state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlapChange {
    /// The condition started flapping at this percent state change.
    Started(f64),
    /// The condition stopped flapping at this percent state change.
    Stopped(f64),
}

impl FlapHistory {
    /// Records one check result (true: the condition held).
    pub fn push(&mut self, holds: bool) {
        self.bits = ((self.bits << 1) | u32::from(holds)) & MASK;
    }

    /// Whether any remembered check saw the condition hold.
    pub fn any(&self) -> bool {
        self.bits != 0
    }

    /// The remembered results as text, oldest first (`1` held, `0` did not).
    pub fn render(&self) -> String {
        (0..HISTORY)
            .rev()
            .map(|i| if self.bits >> i & 1 == 1 { '1' } else { '0' })
            .collect()
    }

    /// The weighted percent state change, 0 to 100.
    pub fn percent(&self) -> f64 {
        let transitions = HISTORY - 1;
        let mut weighted = 0.0;
        // Transition x (1 = oldest, 20 = newest) is between bits (21 - x) and (20 - x).
        for x in 1..=transitions {
            let older = self.bits >> (HISTORY - x) & 1;
            let newer = self.bits >> (HISTORY - x - 1) & 1;
            if older != newer {
                weighted += f64::from(x - 1) * (HIGH_CURVE - LOW_CURVE)
                    / f64::from(transitions - 1)
                    + LOW_CURVE;
            }
        }
        weighted * 100.0 / f64::from(transitions)
    }
}

/// Decides whether the flapping state changes, given the current state and the
/// percent state change: start at `high` or above, stop below `low`.
pub fn flap_transition(flapping: bool, percent: f64, t: &FlapThresholds) -> Option<FlapChange> {
    if !t.enabled {
        return flapping.then_some(FlapChange::Stopped(percent));
    }
    if !flapping && percent >= t.high {
        Some(FlapChange::Started(percent))
    } else if flapping && percent < t.low {
        Some(FlapChange::Stopped(percent))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn history(states: &[bool]) -> FlapHistory {
        let mut h = FlapHistory::default();
        for s in states {
            h.push(*s);
        }
        h
    }

    #[test]
    fn steady_states_do_not_flap() {
        assert_eq!(history(&[true; 30]).percent(), 0.0);
        assert_eq!(history(&[false; 30]).percent(), 0.0);
    }

    #[test]
    fn toggling_every_check_is_one_hundred_percent() {
        let states: Vec<bool> = (0..21).map(|i| i % 2 == 0).collect();
        assert!((history(&states).percent() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn recent_changes_weigh_more_than_old_ones() {
        let mut old = vec![false, true];
        old.extend([true; 19]);
        let mut recent = vec![false; 20];
        recent.push(true);
        let (o, r) = (history(&old).percent(), history(&recent).percent());
        assert!((o - 3.75).abs() < 1e-9, "oldest change weighs 0.75: {o}");
        assert!((r - 6.25).abs() < 1e-9, "newest change weighs 1.25: {r}");
    }

    #[test]
    fn render_shows_oldest_first() {
        let h = history(&[true, false]);
        assert!(h.render().ends_with("10"));
        assert_eq!(h.render().len(), 21);
    }

    #[test]
    fn hysteresis_between_high_and_low() {
        let t = FlapThresholds::default();
        assert_eq!(
            flap_transition(false, 50.0, &t),
            Some(FlapChange::Started(50.0))
        );
        assert_eq!(flap_transition(false, 49.9, &t), None);
        assert_eq!(flap_transition(true, 30.0, &t), None);
        assert_eq!(
            flap_transition(true, 24.0, &t),
            Some(FlapChange::Stopped(24.0))
        );
        let off = FlapThresholds {
            enabled: false,
            ..t
        };
        assert_eq!(flap_transition(false, 100.0, &off), None);
    }

    proptest! {
        #[test]
        fn percent_is_within_bounds(states in proptest::collection::vec(any::<bool>(), 0..60)) {
            let p = history(&states).percent();
            prop_assert!((0.0..=100.0 + 1e-9).contains(&p), "{p}");
        }

        #[test]
        fn a_repeated_state_never_raises_and_a_toggle_never_lowers(
            states in proptest::collection::vec(any::<bool>(), 1..60),
        ) {
            // A repeat adds no change and ages the others (lower weights); a toggle adds
            // the heaviest change, which outweighs what ageing and the dropped oldest
            // change take away.
            let h = history(&states);
            let last = *states.last().expect("non-empty");
            let (mut same, mut toggled) = (h, h);
            same.push(last);
            toggled.push(!last);
            prop_assert!(same.percent() <= h.percent() + 1e-9);
            prop_assert!(toggled.percent() >= h.percent() - 1e-9);
        }

        #[test]
        fn only_high_starts_and_only_low_stops(flapping: bool, p in 0.0f64..100.0) {
            let t = FlapThresholds::default();
            match flap_transition(flapping, p, &t) {
                Some(FlapChange::Started(_)) => prop_assert!(!flapping && p >= t.high),
                Some(FlapChange::Stopped(_)) => prop_assert!(flapping && p < t.low),
                None => prop_assert!((flapping && p >= t.low) || (!flapping && p < t.high)),
            }
        }
    }
}
