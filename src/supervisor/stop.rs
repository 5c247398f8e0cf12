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
