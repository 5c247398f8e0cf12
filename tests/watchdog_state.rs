//! `state.json` is never torn: writers killed with SIGKILL at random points, in a loop,
//! while a reader parses every version it can see.

mod watchdog_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grace::state::{KillSwitch, StatePaths};
use nix::sys::signal::Signal;
use watchdog_support::signal;

const WRITER: &str = "GRACE_TEST_STATE_WRITER";

/// A writer process, killed when dropped (so a failing assertion leaves none behind).
struct Writer(std::process::Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Entry of the writer process (this binary re-executed): updates state.json in a
/// tight loop until killed. Without the variable it checks one update in-process.
#[test]
fn writer_entry() {
    let Some(dir) = std::env::var_os(WRITER) else {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        KillSwitch::update(&paths, "test", |s| s.restart_count = 1).expect("update");
        assert_eq!(KillSwitch::read(&paths).expect("read").restart_count, 1);
        return;
    };
    let paths = StatePaths::new(std::path::PathBuf::from(dir));
    // Go on from the last writer's count, so that readers see it only grow.
    let mut n = KillSwitch::read(&paths).map_or(0, |s| s.restart_count);
    loop {
        n += 1;
        let _ = KillSwitch::update(&paths, "writer", |s| {
            s.restart_count = n;
            s.manual_shutdown = n % 2 == 0;
            s.last_exit_reason = Some("x".repeat((n % 4096) as usize));
        });
    }
}

#[test]
fn state_json_is_never_torn_when_writers_are_killed_mid_write() {
    let d = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(d.path());
    KillSwitch::set_manual_shutdown(&paths, false, "test").expect("seed");
    let exe = std::env::current_exe().expect("exe");
    let mut reads = 0u32;
    let mut last = 0u64;
    for round in 0..25u64 {
        let mut w = Writer(
            Command::new(&exe)
                .args(["--exact", "writer_entry", "--nocapture", "--test-threads=1"])
                .env(WRITER, d.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("writer"),
        );
        // Read while it writes, then kill it at a varying point.
        let until = Instant::now() + Duration::from_millis(10 + (round * 7) % 40);
        while Instant::now() < until {
            let s = KillSwitch::read(&paths).expect("state.json must always parse");
            assert!(
                s.restart_count >= last,
                "went back: {} after {last}",
                s.restart_count
            );
            last = s.restart_count;
            reads += 1;
        }
        signal(w.0.id(), Signal::SIGKILL);
        w.0.wait().expect("reap");
        let s = KillSwitch::read(&paths).expect("state.json must parse after a kill");
        assert!(!s.updated_by.is_empty());
    }
    assert!(reads > 100, "only {reads} reads");
    // A killed writer may leave its temporary file; it never replaces state.json.
    let names: Vec<String> = std::fs::read_dir(d.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(names.iter().any(|n| n == "state.json"), "{names:?}");
}
