//! The state directory is joined once: the real `grace serve`, run with a relative
//! `--state-dir` and with none (`.grace/` in the working directory), takes its first
//! scheduled snapshot of the model kernel's weights under `snapshots/`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A serve started by the test: SIGTERMed, then SIGKILLed, and reaped when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn snapshot_files(state: &Path) -> Vec<String> {
    let Ok(kinds) = std::fs::read_dir(state.join("snapshots")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for kind in kinds.flatten() {
        for f in std::fs::read_dir(kind.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

/// Runs serve in `cwd` with `args`, waits for a snapshot of `model.pt` under
/// `state/snapshots/`, and returns serve's JSON log.
fn serve_snapshots_model(cwd: &Path, args: &[&str], state: &Path) -> String {
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_grace"))
            .current_dir(cwd)
            .args(args)
            .args(["serve", "--port", "0"])
            .env_remove("GRACE_STATE_DIR")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn grace serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(8);
    let found = loop {
        let files = snapshot_files(state);
        if files
            .iter()
            .any(|f| f.starts_with("model_") && f.ends_with(".pt"))
        {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot of model.pt under {}: {files:?}\n{}",
            state.join("snapshots").display(),
            std::fs::read_to_string(state.join("logs/grace.jsonl")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(serve);
    let log = std::fs::read_to_string(state.join("logs/grace.jsonl")).unwrap_or_default();
    assert!(
        !log.contains("scheduled snapshot failed"),
        "{found:?}\n{log}"
    );
    log
}

#[test]
fn serve_with_a_relative_state_dir_takes_its_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = serve_snapshots_model(
        dir.path(),
        &["--state-dir", "./rel/state"],
        &dir.path().join("rel/state"),
    );
    let abs = std::fs::canonicalize(dir.path())
        .expect("canonical")
        .join("rel/state");
    assert!(
        log.contains(&abs.display().to_string()),
        "serve names its state directory absolute: {log}"
    );
}

#[test]
fn serve_without_a_state_dir_takes_its_snapshots_in_dot_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    serve_snapshots_model(dir.path(), &[], &dir.path().join(".grace"));
}
