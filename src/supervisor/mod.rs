//! Erlang/OTP-style supervisors on ractor.
//!
//! A supervisor starts its children in order, watches them (each child's actor is
//! linked to it), restarts them by its [`Strategy`] and their [`RestartType`], fails
//! when restarts exceed its [`Intensity`] (escalating to its parent), and stops them in
//! reverse order. `docs/supervisor.md` states the semantics and where they differ from
//! OTP.
//!
//! The decisions are plain functions with no runtime in them: [`strategy`] (which
//! children a failure stops and restarts), [`intensity`] (the sliding window of
//! restarts) and [`backoff`] (the delay before a restart). The actor only carries them
//! out; [`SupervisorHandle`] is how the rest of the program talks to it.

mod actor;
pub mod backoff;
mod children;
pub mod events;
mod group;
mod handle;
mod in_place;
pub mod intensity;
mod limits;
mod msg;
mod ops;
mod restart;
mod spec;
mod stop;
pub mod strategy;

pub use events::{CriticalDownEvent, MaxAttemptsEvent, RestartEvent};
pub use handle::{SupervisorExit, SupervisorHandle};
pub(crate) use in_place::InPlace;
pub use msg::{Internal, SupervisorError, SupervisorMsg};
pub use spec::{
    AttemptLimit, AutoShutdown, Backoff, ChildInfo, ChildKind, ChildSpec, Counts, Intensity,
    RestartType, Shutdown, Started, Strategy, SupervisorSpec,
};
pub use stop::{child_bound, shutdown_bound, KILL_WAIT};
