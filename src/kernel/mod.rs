//! Kernels: the units of work Grace supervises.
//!
//! A kernel is anything with a lifecycle a supervisor can start, stop and watch. Library
//! users implement [`Kernel`]; `kind = "exec"` kernels wrap an external command. Each
//! running kernel is a ractor actor ([`KernelMsg`] is its mailbox type) on the isolation
//! its [`KernelSpec`] asks for: a tokio task, its own OS thread, or a child process.
//!
//! Kinds ([`register_kind`]) turn a `[[kernel]]` of `grace.toml` into a kernel factory:
//! the built-in `exec` ([`exec`]), and the demo kernels of the default configuration
//! ([`demo`]). [`thread::kernel_threads`] counts the threads of `thread` kernels, live
//! and abandoned.
//!
//! Liveness lives in shared atomics per kernel ([`KernelStatus`]): the kernel's message
//! loop stamps when each handler starts and clears it when the handler returns; a
//! kernel that hands itself to the heartbeat monitor ([`Liveness`]) does so only when
//! it becomes busy while unwatched, so an idle kernel costs the monitor nothing. Kernels
//! that [tick](Kernel::ticks) also beat at every message, and the monitor checks their
//! heartbeat age. No message per beat goes to a central actor.

mod actor;
mod api;
pub mod demo;
pub mod exec;
mod kinds;
mod liveness;
mod option_check;
mod spec;
mod status;
pub mod thread;

pub(crate) use actor::spawn;
pub use actor::spawn_kernel;
pub use api::{
    Control, Fault, Health, Kernel, KernelContext, KernelError, KernelMsg, KernelReply, Request,
    RestartNote,
};
pub use kinds::{
    build_kind, check_options, kind_names, parse_options, register_kind, resolve_kind, Built,
    KindBuilder, OptionError,
};
pub use liveness::Liveness;
pub use spec::{Isolation, KernelFactory, KernelSpec, DEFAULT_START_TIMEOUT};
pub use status::{KernelState, KernelStatus, StatusSnapshot};
