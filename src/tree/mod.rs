//! The supervision tree `grace serve` runs, the [`System`] every part shares, and the
//! [`Registry`] that finds a kernel by name across restarts.

pub mod build;
mod registry;
mod system;

pub use registry::{KernelEntry, Registry, TreeError};
pub use system::{System, SystemError};
