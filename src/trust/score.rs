//! Trust arithmetic (pure): what a change does to a score, kept in [0, 1].

use serde::{Deserialize, Serialize};

use super::config::TrustConfig;

/// Why a score changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A remediation succeeded: `+reward`.
    Reward,
    /// A remediation failed: `-failure_penalty`.
    Failure,
    /// An incident repeated while open: `-repeat_penalty`.
    RepeatedIncident,
    /// Any other adjustment (positive raises, negative lowers).
    By(f64),
}

/// The payload of `trust.score.update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustUpdate {
    /// The component.
    pub component: String,
    /// The new score.
    pub score: f64,
    /// The score before.
    pub previous: f64,
    /// `score - previous` (0 when the score was already at a bound).
    pub delta: f64,
    /// Why.
    pub reason: String,
}

/// Keeps a score in [0, 1] (NaN counts as 0: no trust in a broken value), rounded to
/// nine decimals so that the score in memory is exactly the one `trust.json` holds.
pub fn clamp(score: f64) -> f64 {
    if score.is_nan() {
        0.0
    } else {
        (score.clamp(0.0, 1.0) * 1e9).round() / 1e9
    }
}

/// The signed amount a change asks for.
pub fn requested(change: Change, config: &TrustConfig) -> f64 {
    match change {
        Change::Reward => config.reward,
        Change::Failure => -config.failure_penalty,
        Change::RepeatedIncident => -config.repeat_penalty,
        Change::By(d) if d.is_finite() => d,
        Change::By(_) => 0.0,
    }
}

/// The score after `change`.
pub fn apply(previous: f64, change: Change, config: &TrustConfig) -> f64 {
    clamp(clamp(previous) + requested(change, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            Just(Change::Reward),
            Just(Change::Failure),
            Just(Change::RepeatedIncident),
            any::<f64>().prop_map(Change::By),
        ]
    }

    proptest! {
        #[test]
        fn the_score_stays_in_zero_to_one(start in any::<f64>(), changes in prop::collection::vec(change(), 0..100)) {
            let c = TrustConfig::default();
            let mut s = clamp(start);
            for ch in changes {
                s = apply(s, ch, &c);
                prop_assert!((0.0..=1.0).contains(&s), "{s}");
            }
        }

        #[test]
        fn rewards_never_lower_and_penalties_never_raise(s in 0.0f64..=1.0) {
            let c = TrustConfig::default();
            prop_assert!(apply(s, Change::Reward, &c) >= s);
            prop_assert!(apply(s, Change::Failure, &c) <= s);
            prop_assert!(apply(s, Change::RepeatedIncident, &c) <= s);
        }
    }

    #[test]
    fn seed_amounts() {
        let c = TrustConfig::default();
        assert!((apply(0.5, Change::Reward, &c) - 0.55).abs() < 1e-12);
        assert!((apply(1.0, Change::Failure, &c) - 0.85).abs() < 1e-12);
        assert_eq!(apply(0.02, Change::RepeatedIncident, &c), 0.0);
        assert_eq!(apply(0.99, Change::Reward, &c), 1.0);
    }
}
