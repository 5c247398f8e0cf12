//! Containment of exec kernels forced to the subreaper mechanism
//! (`GRACE_CONTAINMENT=subreaper`), as on a host without a writable cgroup v2: the
//! test process is a child subreaper, finds every process of a kernel through `/proc`
//! and reaps the orphans that come back to it.

mod containment_support;
mod kernel_support;

use containment_support::*;
use grace::kernel::exec::contain::{self, Mechanism};

const MODE: &str = "subreaper";

#[test]
fn the_subreaper_is_in_force() {
    run(MODE, async {
        assert!(
            matches!(contain::init(), Mechanism::Subreaper { why } if why.contains("subreaper")),
            "{:?}",
            contain::init()
        );
        assert_eq!(nix::sys::prctl::get_child_subreaper(), Ok(true));
    });
}

#[test]
fn a_stopped_kernel_leaves_nothing_running() {
    run(MODE, a_stopped_kernel_leaves_nothing(1));
}

#[test]
fn a_killed_kernel_leaves_nothing_running() {
    run(MODE, a_killed_kernel_leaves_nothing(2));
}

#[test]
fn a_crashed_leader_leaves_nothing_running() {
    run(MODE, a_crashed_leader_leaves_nothing(3));
}

#[test]
fn an_escapee_seen_at_a_tick_is_ended() {
    run(MODE, a_tracked_escapee_is_ended(4));
}
