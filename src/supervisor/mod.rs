//! Erlang/OTP-style supervisors on ractor.
//!
//! The decisions are plain functions with no runtime in them ([`spec`] for the
//! vocabulary); the supervisor actor only carries them out. See
//! `docs/supervisor.md` for the semantics and where they differ from OTP.

mod spec;

pub use spec::{
    AttemptLimit, Backoff, ChildInfo, ChildKind, ChildSpec, Counts, Intensity, RestartType,
    Shutdown, Strategy, SupervisorError, SupervisorMsg, SupervisorSpec,
};
