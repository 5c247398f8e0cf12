//! The state directory: where every file Grace keeps lives, and how files that must
//! survive a crash are written (temporary file, fsync, rename).
//!
//! The watchdog's files live here too: the kill switch ([`KillSwitch`], `state.json`),
//! the one-per-directory locks ([`StateLock`], `serve.lock` and `watchdog.lock`) and
//! [`ServeInfo`] (`serve.json`).

mod atomic;
mod error;
mod kill_switch;
mod lock;
mod paths;
mod serve_info;

pub use atomic::atomic_write;
pub use error::StateError;
pub use kill_switch::{ChildRecord, KillSwitch};
pub use lock::{holder as lock_holder, is_held as lock_is_held, StateLock};
pub use paths::StatePaths;
pub use serve_info::ServeInfo;
