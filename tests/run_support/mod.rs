//! Running the real `grace` binary to completion in a test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `grace` with `args` in `dir` until it exits; returns its exit status and its
/// output (stdout and stderr together). A run that lasts past `limit` is killed and
/// fails the test.
pub fn run_grace(dir: &Path, args: &[&str], limit: Duration) -> (i32, String) {
    let out = dir.join("out.txt");
    let file = std::fs::File::create(&out).expect("output file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_grace"))
        .args(args)
        .current_dir(dir)
        .env_remove("GRACE_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("grace runs");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "grace {args:?} was still running after {limit:?}: {}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&out).expect("output");
    (status.code().unwrap_or(-1), text)
}
