//! Step outcomes and how they fold into a playbook verdict: plain functions, no runtime.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a step ended, as recorded in its `StepRecord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The action did what it was asked.
    Ok,
    /// The action failed on its last attempt.
    Failed,
    /// Not acted: nothing to do (the output says why), or not reached after a failure.
    Skipped,
    /// The last attempt ran out of time.
    TimedOut,
    /// Dry run: logged, not run.
    DryRun,
}

impl StepStatus {
    /// The recorded name (`ok`, `failed`, `skipped`, `timed_out`, `dry_run`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::TimedOut => "timed_out",
            StepStatus::DryRun => "dry_run",
        }
    }

    /// Whether this is a failure (failed or timed out).
    pub fn is_failure(self) -> bool {
        matches!(self, StepStatus::Failed | StepStatus::TimedOut)
    }
}

/// How one attempt of an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Succeeded.
    Ok,
    /// Succeeded without acting (nothing to do).
    Skipped,
    /// Failed; `retryable` is false for errors another attempt cannot fix (bad
    /// arguments).
    Failed {
        /// Whether another attempt may succeed.
        retryable: bool,
    },
    /// Ran out of time.
    TimedOut,
}

impl Attempt {
    /// The step status this attempt gives when it is the last one.
    pub fn status(self) -> StepStatus {
        match self {
            Attempt::Ok => StepStatus::Ok,
            Attempt::Skipped => StepStatus::Skipped,
            Attempt::Failed { .. } => StepStatus::Failed,
            Attempt::TimedOut => StepStatus::TimedOut,
        }
    }
}

/// Whether to try again after attempt number `made` (1-based) ended with `last`, for a
/// step allowing `retries` extra attempts.
pub fn retry(made: u32, retries: u32, last: Attempt) -> bool {
    let again = match last {
        Attempt::Ok | Attempt::Skipped => false,
        Attempt::Failed { retryable } => retryable,
        Attempt::TimedOut => true,
    };
    again && made <= retries
}

/// Whether a step that ended with `status` stops the playbook.
pub fn stops_run(status: StepStatus, continue_on_failure: bool) -> bool {
    status.is_failure() && !continue_on_failure
}

/// The status of a parallel group from its children's statuses and their
/// `continue_on_failure` flags: failed when a child failed that may not; dry run when
/// every child was; skipped when every child was; else ok.
pub fn group_status(children: &[(StepStatus, bool)]) -> StepStatus {
    if children.iter().any(|&(s, cont)| stops_run(s, cont)) {
        let all_timeouts = children
            .iter()
            .filter(|&&(s, cont)| stops_run(s, cont))
            .all(|&(s, _)| s == StepStatus::TimedOut);
        return if all_timeouts {
            StepStatus::TimedOut
        } else {
            StepStatus::Failed
        };
    }
    if !children.is_empty() && children.iter().all(|&(s, _)| s == StepStatus::DryRun) {
        return StepStatus::DryRun;
    }
    if !children.is_empty() && children.iter().all(|&(s, _)| s == StepStatus::Skipped) {
        return StepStatus::Skipped;
    }
    StepStatus::Ok
}

/// A playbook run's verdict from its top-level steps (status and
/// `continue_on_failure`): it succeeded unless a step failed that may not.
pub fn run_succeeded(steps: &[(StepStatus, bool)]) -> bool {
    !steps.iter().any(|&(s, cont)| stops_run(s, cont))
}

/// Actions that only look, wait, tell or hand over: a step of theirs that succeeded
/// changed nothing in the service.
pub const PASSIVE: [&str; 9] = [
    "notify",
    "wait",
    "verify_health",
    "check_kernels",
    "create_diagnostic_task",
    "escalate",
    "webhook",
    "parallel",
    "emergency_mode",
];

/// Whether a run acted: some step that is not passive ended `ok`. A run whose steps
/// were all skipped, refused, failed or passive did nothing to the service.
pub fn acted(steps: &[crate::incident::StepRecord]) -> bool {
    steps
        .iter()
        .any(|s| s.status == StepStatus::Ok.as_str() && !PASSIVE.contains(&s.action.as_str()))
}

/// Whether a run of `took` met `slo` (None when the playbook sets no SLO).
pub fn slo_met(took: Duration, slo: Option<Duration>) -> Option<bool> {
    slo.map(|s| took <= s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = StepStatus> {
        prop_oneof![
            Just(StepStatus::Ok),
            Just(StepStatus::Failed),
            Just(StepStatus::Skipped),
            Just(StepStatus::TimedOut),
            Just(StepStatus::DryRun),
        ]
    }

    fn attempt() -> impl Strategy<Value = Attempt> {
        prop_oneof![
            Just(Attempt::Ok),
            Just(Attempt::Skipped),
            Just(Attempt::Failed { retryable: true }),
            Just(Attempt::Failed { retryable: false }),
            Just(Attempt::TimedOut),
        ]
    }

    #[test]
    fn retries_stop_at_the_limit_and_on_success() {
        let fail = Attempt::Failed { retryable: true };
        assert!(retry(1, 2, fail));
        assert!(retry(2, 2, fail));
        assert!(!retry(3, 2, fail));
        assert!(!retry(1, 2, Attempt::Ok));
        assert!(!retry(1, 5, Attempt::Failed { retryable: false }));
        assert!(retry(1, 1, Attempt::TimedOut));
        assert!(!retry(1, 0, Attempt::TimedOut));
    }

    #[test]
    fn a_group_fails_only_for_a_child_that_may_not_fail() {
        use StepStatus::*;
        assert_eq!(group_status(&[(Ok, false), (Failed, true)]), Ok);
        assert_eq!(group_status(&[(Ok, false), (Failed, false)]), Failed);
        assert_eq!(group_status(&[(TimedOut, false), (Ok, false)]), TimedOut);
        assert_eq!(group_status(&[(DryRun, false), (DryRun, false)]), DryRun);
        assert_eq!(group_status(&[(Skipped, false), (Skipped, false)]), Skipped);
        assert_eq!(group_status(&[(Skipped, false), (Ok, false)]), Ok);
    }

    #[test]
    fn slo_is_met_up_to_and_including_the_bound() {
        let s = Some(Duration::from_secs(2));
        assert_eq!(slo_met(Duration::from_secs(2), s), Some(true));
        assert_eq!(slo_met(Duration::from_millis(2001), s), Some(false));
        assert_eq!(slo_met(Duration::from_secs(99), None), None);
    }

    proptest! {
        #[test]
        fn attempts_never_exceed_one_plus_retries(retries in 0u32..10, seq in prop::collection::vec(attempt(), 1..20)) {
            // Replays the executor's loop over a scripted sequence of attempts.
            let mut made = 0u32;
            for a in &seq {
                made += 1;
                if !retry(made, retries, *a) {
                    break;
                }
            }
            prop_assert!(made <= retries + 1);
        }

        #[test]
        fn run_fails_iff_some_step_fails_without_continue(steps in prop::collection::vec((status(), any::<bool>()), 0..12)) {
            let expected = steps.iter().all(|(s, c)| !s.is_failure() || *c);
            prop_assert_eq!(run_succeeded(&steps), expected);
        }

        #[test]
        fn a_group_is_a_failure_iff_its_run_would_be(children in prop::collection::vec((status(), any::<bool>()), 1..8)) {
            prop_assert_eq!(group_status(&children).is_failure(), !run_succeeded(&children));
        }
    }
}
