//! The state directory: where every file Grace keeps lives, and how files that must
//! survive a crash are written (temporary file, fsync, rename).

mod atomic;
mod paths;

pub use atomic::atomic_write;
pub use paths::StatePaths;
