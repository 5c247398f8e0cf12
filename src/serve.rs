//! `grace serve`: build the tree, run it, stop it cleanly.

/// Exit status of a serve that asks its watchdog to restart it (not a crash).
pub const EXIT_RESTART_REQUESTED: i32 = 75;
