//! Stopping one child by its shutdown policy: a graceful stop bounded by a timeout, then
//! a kill; and a bound on the kill itself, past which the child is abandoned.

use std::time::Duration;

use ractor::ActorCell;

use super::spec::Shutdown;

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
/// the sum of theirs. `None` when a child's stop is unbounded.
pub fn shutdown_bound(spec: &super::SupervisorSpec) -> Option<Duration> {
    spec.children
        .iter()
        .try_fold(Duration::ZERO, |sum, c| Some(sum + child_bound(c)?))
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
}
