//! Containment of exec kernels under the mechanism this host offers (`auto`: a cgroup
//! v2 per kernel where serve's cgroup is writable, else the subreaper): processes that
//! ignore SIGTERM, double-fork and call setsid end with their kernel.

mod containment_support;
mod kernel_support;

use containment_support::*;
use grace::kernel::exec::contain::{self, Mechanism};

const MODE: &str = "auto";

#[test]
fn the_mechanism_follows_the_host() {
    run(MODE, async {
        let writable = grace::kernel::exec::cgroup::own_dir()
            .is_ok_and(|d| nix::unistd::access(&d, nix::unistd::AccessFlags::W_OK).is_ok());
        let m = contain::init();
        match m {
            Mechanism::Cgroup(dir) => {
                assert!(writable);
                let own = grace::kernel::exec::cgroup::own_dir().expect("own cgroup");
                assert_eq!(dir, &own.join(format!("grace-{}", std::process::id())));
                assert!(own.join("cgroup.procs").exists(), "{own:?}");
            }
            Mechanism::Subreaper { why } => assert!(why.contains("cgroup"), "{why}"),
        }
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
