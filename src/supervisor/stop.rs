//! Stopping children by their shutdown policy: a graceful stop bounded by a timeout,
//! then a kill; a bound on the kill itself, past which the child is abandoned; and a
//! whole supervisor's children, one after another in reverse start order, or all at
//! once for a dynamic supervisor (OTP's `simple_one_for_one`).

use std::time::Duration;

use futures::future::join_all;
use ractor::ActorCell;

use super::actor::Sup;
use super::children::Key;
use super::spec::Shutdown;
use crate::kernel::KernelState;

/// How long a killed child may take to exit before it is abandoned. A kill ends a
/// task-isolated kernel at its next await; a kernel spinning the CPU without awaiting
/// (or stuck in a blocking call on its own thread) never gets there, and a supervisor
/// that waited for it would hang with it.
pub const KILL_WAIT: Duration = Duration::from_secs(2);

/// How a child is to be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// By its own shutdown policy.
    Policy,
    /// Killed at once: a hung child would never process a graceful stop.
    Kill,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// It stopped gracefully.
    Gracefully,
    /// It was killed (brutal kill, or its graceful stop timed out).
    Killed,
    /// It did not exit even after a kill within [`KILL_WAIT`]; it was left behind.
    Abandoned,
}

/// Stops `cell` and waits (boundedly, except for `Shutdown::Infinity`) for it to exit.
pub(crate) async fn stop(cell: &ActorCell, shutdown: Shutdown, reason: &str) -> Stopped {
    match shutdown {
        Shutdown::BrutalKill => kill(cell).await,
        Shutdown::Timeout(d) => {
            cell.stop(Some(reason.to_owned()));
            match cell.wait(Some(d)).await {
                Ok(()) => Stopped::Gracefully,
                Err(_) => kill(cell).await,
            }
        }
        Shutdown::Infinity => {
            cell.stop(Some(reason.to_owned()));
            let _ = cell.wait(None).await;
            Stopped::Gracefully
        }
    }
}

async fn kill(cell: &ActorCell) -> Stopped {
    cell.kill();
    match cell.wait(Some(KILL_WAIT)).await {
        Ok(()) => Stopped::Killed,
        Err(_) => Stopped::Abandoned,
    }
}

impl Sup {
    /// Untracks child `key` and leaves it in `state`; returns its actor (if it ran) and
    /// how it is to be stopped. Untracked first, so that its exit, however late, is not
    /// taken for a failure.
    fn detach(&mut self, key: Key, how: How, state: KernelState) -> Option<(ActorCell, Shutdown)> {
        let old = self.children.set_down(key);
        let c = self.children.get_mut(key)?;
        if let Some(e) = &c.entry {
            e.set_actor(None);
        }
        c.pending = None;
        c.set_state(state);
        let shutdown = match how {
            How::Kill => Shutdown::BrutalKill,
            How::Policy => c.spec.shutdown,
        };
        Some((old.cell()?, shutdown))
    }

    fn note_abandoned(&self, key: Key) {
        self.shared.count_abandoned();
        let id = self.child_id(key);
        tracing::error!(child = %id, kill_wait = ?KILL_WAIT, "child did not exit after a kill; abandoned");
    }

    /// Stops child `key` (if it runs) and leaves it in `state`.
    pub(crate) async fn stop_child(&mut self, key: Key, how: How, state: KernelState) {
        let Some((cell, shutdown)) = self.detach(key, how, state) else {
            return;
        };
        if stop(&cell, shutdown, "shutdown").await == Stopped::Abandoned {
            self.note_abandoned(key);
        }
    }

    /// Stops every running child (graceful shutdown, or the supervisor failing),
    /// leaving them in `state`: in reverse start order, one at a time; a dynamic
    /// supervisor stops them all at once, each bounded by its own policy.
    pub(crate) async fn stop_all(&mut self, state: KernelState, why: &str) {
        let keys = self.children.running_reversed();
        if self.max_children.is_some() {
            let detached: Vec<(Key, ActorCell, Shutdown)> = keys
                .iter()
                .filter_map(|&k| self.detach(k, How::Policy, state).map(|(c, s)| (k, c, s)))
                .collect();
            let outcomes = join_all(
                detached
                    .iter()
                    .map(|(_, cell, shutdown)| stop(cell, *shutdown, "shutdown")),
            )
            .await;
            for ((k, _, _), outcome) in detached.iter().zip(outcomes) {
                if outcome == Stopped::Abandoned {
                    self.note_abandoned(*k);
                }
            }
        } else {
            for &key in &keys {
                self.stop_child(key, How::Policy, state).await;
            }
        }
        for &key in &keys {
            if let Some(c) = self.children.get_mut(key) {
                c.set_reason(why);
            }
        }
        // Children already down (just exited, or waiting for a restart) settle too;
        // those left down on purpose (stopped, failed) keep their state.
        for key in self.children.keys() {
            if let Some(c) = self.children.get_mut(key) {
                c.pending = None;
                if !matches!(c.state(), KernelState::Stopped | KernelState::Failed) {
                    c.set_state(state);
                }
            }
        }
    }
}

/// The longest stopping a child by its policy can take: its timeout and a kill's wait
/// ([`KILL_WAIT`]), a supervisor's own bound; `None` for a kernel stopped with
/// `Shutdown::Infinity` (unbounded).
pub fn child_bound(child: &super::ChildSpec) -> Option<Duration> {
    match (child.shutdown, &child.kind) {
        (Shutdown::BrutalKill, _) => Some(KILL_WAIT),
        (Shutdown::Timeout(d), _) => Some(d + KILL_WAIT),
        (Shutdown::Infinity, super::ChildKind::Supervisor(s)) => shutdown_bound(s),
        (Shutdown::Infinity, super::ChildKind::Kernel(_)) => None,
    }
}

/// The longest a graceful shutdown of a supervisor built from `spec` can take: its
/// children stop one after another in reverse start order (as in OTP), so the bound is
/// the sum of theirs; a dynamic supervisor's stop at once, so its bound is the longest
/// of theirs. `None` when a child's stop is unbounded.
pub fn shutdown_bound(spec: &super::SupervisorSpec) -> Option<Duration> {
    let mut bounds = spec.children.iter().map(child_bound);
    if spec.max_children.is_some() {
        bounds.try_fold(Duration::ZERO, |max, b| Some(max.max(b?)))
    } else {
        bounds.try_fold(Duration::ZERO, |sum, b| Some(sum + b?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{ChildSpec, Strategy, SupervisorSpec};

    fn kernel(name: &str, s: Shutdown) -> ChildSpec {
        let f =
            crate::kernel::exec::ExecKernel::factory(crate::kernel::exec::ExecOptions::new("true"));
        ChildSpec::kernel(crate::kernel::KernelSpec::new(name, f)).shutdown(s)
    }

    #[test]
    fn the_bound_is_the_sum_over_the_tree() {
        let s = Duration::from_secs;
        let inner = SupervisorSpec::new("inner", Strategy::OneForOne)
            .child(kernel("a", Shutdown::Timeout(s(3))))
            .child(kernel("b", Shutdown::BrutalKill));
        let root = SupervisorSpec::new("root", Strategy::OneForOne)
            .child(ChildSpec::supervisor(inner))
            .child(kernel("c", Shutdown::Timeout(s(1))));
        assert_eq!(shutdown_bound(&root), Some(s(3) + s(1) + KILL_WAIT * 3));
        let open = root.child(kernel("d", Shutdown::Infinity));
        assert_eq!(shutdown_bound(&open), None);
    }

    #[test]
    fn a_dynamic_supervisor_is_bounded_by_its_slowest_child() {
        let s = Duration::from_secs;
        let dynamic = SupervisorSpec::new("dyn", Strategy::OneForOne)
            .max_children(10)
            .child(kernel("a", Shutdown::Timeout(s(3))))
            .child(kernel("b", Shutdown::Timeout(s(1))));
        assert_eq!(shutdown_bound(&dynamic), Some(s(3) + KILL_WAIT));
    }
}
