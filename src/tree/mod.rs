//! The supervision tree `grace serve` runs, the [`System`] every part shares, and the
//! [`Registry`] that finds a kernel by name across restarts.

pub mod build;
mod heartbeat;
mod registry;
mod start;
mod system;

pub use heartbeat::{next_due, spawn_heartbeat, tick_phase, HeartbeatHandle, HeartbeatMissed};
pub use registry::{KernelEntry, Registry, TreeError};
pub use start::{Extensions, StartError, Tree};
pub use system::{System, SystemError};
