//! Rate limit and cooldown: may a playbook run now? The decision is a plain function
//! over timestamps; [`Limiter`] only keeps the timestamps.
//!
//! The rate limit counts every run of a playbook (all components together): it bounds
//! how much remediation one playbook can do. The cooldown is kept per (playbook,
//! component): a kernel just restarted is not restarted again at once, while another
//! kernel failing meanwhile is still remediated.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

/// The decision for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Admission {
    /// Run it.
    Run,
    /// The playbook already ran `max` times in its window.
    RateLimited {
        /// Milliseconds until the oldest run in the window leaves it.
        retry_after_ms: u64,
    },
    /// The playbook ran for this component less than its cooldown ago.
    CoolingDown {
        /// Milliseconds left.
        remaining_ms: u64,
    },
}

/// A playbook's limits, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// `(max runs, window)`.
    pub rate: Option<(u32, u64)>,
    /// Cooldown per component.
    pub cooldown: Option<u64>,
}

impl Limits {
    /// From a playbook's settings.
    pub fn new(rate: Option<(u32, Duration)>, cooldown: Option<Duration>) -> Limits {
        Limits {
            rate: rate.map(|(n, w)| (n, w.as_millis() as u64)),
            cooldown: cooldown.map(|c| c.as_millis() as u64),
        }
    }
}

/// Decides whether a run may start at `now` (ms) given the start times of the
/// playbook's runs (`starts`, oldest first) and the last run for this component.
pub fn admit(
    now: u64,
    starts: &VecDeque<u64>,
    last_for_component: Option<u64>,
    l: Limits,
) -> Admission {
    if let (Some(cool), Some(last)) = (l.cooldown, last_for_component) {
        let since = now.saturating_sub(last);
        if since < cool {
            return Admission::CoolingDown {
                remaining_ms: cool - since,
            };
        }
    }
    if let Some((max, window)) = l.rate {
        let in_window: Vec<u64> = starts
            .iter()
            .copied()
            .filter(|&t| now.saturating_sub(t) < window)
            .collect();
        if in_window.len() >= max as usize {
            let oldest = in_window.first().copied().unwrap_or(now);
            return Admission::RateLimited {
                retry_after_ms: window.saturating_sub(now.saturating_sub(oldest)),
            };
        }
    }
    Admission::Run
}

/// Drops start times that left the window.
pub fn prune(now: u64, starts: &mut VecDeque<u64>, window: u64) {
    while starts
        .front()
        .is_some_and(|&t| now.saturating_sub(t) >= window)
    {
        starts.pop_front();
    }
}

#[derive(Default)]
struct Book {
    starts: VecDeque<u64>,
    last: HashMap<String, u64>,
}

/// The run history of every playbook, shared by the dispatcher across its restarts.
#[derive(Default)]
pub struct Limiter {
    books: Mutex<HashMap<String, Book>>,
}

impl Limiter {
    /// Decides for `playbook` and `component` at `now` (ms), and when the answer is
    /// [`Admission::Run`] records the run (so two callers cannot both pass the limit).
    pub fn try_start(&self, playbook: &str, component: &str, now: u64, l: Limits) -> Admission {
        let mut books = self.books.lock();
        let book = books.entry(playbook.to_owned()).or_default();
        if let Some((_, window)) = l.rate {
            prune(now, &mut book.starts, window);
        }
        let a = admit(now, &book.starts, book.last.get(component).copied(), l);
        if a == Admission::Run {
            book.starts.push_back(now);
            if l.rate.is_none() {
                // Without a rate limit only the latest start matters.
                while book.starts.len() > 1 {
                    book.starts.pop_front();
                }
            }
            book.last.insert(component.to_owned(), now);
        }
        a
    }

    /// Marks the end of a run for the cooldown: it counts from the end of the run.
    pub fn finished(&self, playbook: &str, component: &str, now: u64) {
        if let Some(book) = self.books.lock().get_mut(playbook) {
            book.last.insert(component.to_owned(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rate_limit_allows_max_per_window() {
        let lim = Limiter::default();
        let l = Limits {
            rate: Some((2, 1000)),
            cooldown: None,
        };
        assert_eq!(lim.try_start("p", "a", 0, l), Admission::Run);
        assert_eq!(lim.try_start("p", "b", 10, l), Admission::Run);
        assert_eq!(
            lim.try_start("p", "c", 20, l),
            Admission::RateLimited {
                retry_after_ms: 980
            }
        );
        assert_eq!(lim.try_start("other", "c", 20, l), Admission::Run);
        assert_eq!(lim.try_start("p", "c", 1000, l), Admission::Run);
    }

    #[test]
    fn cooldown_is_per_component_and_counts_from_the_end() {
        let lim = Limiter::default();
        let l = Limits {
            rate: None,
            cooldown: Some(500),
        };
        assert_eq!(lim.try_start("p", "a", 0, l), Admission::Run);
        lim.finished("p", "a", 300);
        assert_eq!(
            lim.try_start("p", "a", 700, l),
            Admission::CoolingDown { remaining_ms: 100 }
        );
        assert_eq!(lim.try_start("p", "b", 700, l), Admission::Run);
        assert_eq!(lim.try_start("p", "a", 800, l), Admission::Run);
    }

    proptest! {
        #[test]
        fn never_more_than_max_runs_in_any_window(
            max in 1u32..5,
            window in 1u64..500,
            gaps in prop::collection::vec(0u64..100, 1..60),
        ) {
            let lim = Limiter::default();
            let l = Limits { rate: Some((max, window)), cooldown: None };
            let mut now = 0;
            let mut admitted = Vec::new();
            for g in gaps {
                now += g;
                if lim.try_start("p", "c", now, l) == Admission::Run {
                    admitted.push(now);
                }
            }
            for (i, &t) in admitted.iter().enumerate() {
                let in_window = admitted[i..].iter().take_while(|&&u| u - t < window).count();
                prop_assert!(in_window <= max as usize);
            }
        }
    }
}
