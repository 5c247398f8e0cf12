//! Shared helpers of the deployment tests: running the `grace` binary, and a watchdog or
//! serve started as a service manager would, stopped by a signal, and killed with its
//! serve should the test end first.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The binary under test.
pub const GRACE: &str = env!("CARGO_BIN_EXE_grace");

/// Runs `grace <args>` to completion and asserts it succeeded.
pub fn grace_ok<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = Command::new(GRACE).args(args).output().expect("run grace");
    assert!(out.status.success(), "grace failed: {out:?}");
    out
}

/// `grace --config <config> --state-dir <state> status`.
pub fn status(config: &Path, state: &Path) -> Output {
    Command::new(GRACE)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .arg("status")
        .output()
        .expect("grace status")
}

/// A `grace watch` or `grace serve` started by the test on state directory `state`.
pub struct Running {
    pub child: Child,
    pub state: PathBuf,
}

impl Running {
    /// Panics if the process has exited.
    pub fn assert_alive(&mut self, what: &str) {
        let exited = self.child.try_wait().expect("try_wait");
        assert!(exited.is_none(), "{what}: exited with {exited:?}");
    }

    /// Sends `sig` and waits up to `timeout` for the process to exit.
    pub fn stop(&mut self, sig: Signal, timeout: Duration) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), sig).expect("signal");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "did not stop on {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let paths = grace::state::StatePaths::new(&self.state);
        if let Ok(Some(info)) = grace::state::ServeInfo::read(&paths) {
            let _ = killpg(Pid::from_raw(info.pid as i32), Signal::SIGKILL);
        }
    }
}
