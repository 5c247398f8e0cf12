//! A tree built around one main kernel: with `[kernels] auto_shutdown`, serve ends by
//! itself, exit status 0, when its significant kernel finishes, stopping the rest; a
//! crash of that kernel is still repaired.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[http]
enabled = false

[kernels]
auto_shutdown = "any_significant"

[[kernel]]
name = "helper"
kind = "exec"
options = { command = "sleep", args = ["60"] }

[[kernel]]
name = "main"
kind = "exec"
restart = "transient"
significant = true
options = { command = "sh", args = ["-c", "if [ -e crashed ]; then sleep 0.5; exit 0; else touch crashed; exit 3; fi"] }
"#;

/// Runs `grace serve` in `dir` until it exits (at most `limit`); its status and output.
fn serve(dir: &Path, limit: Duration) -> (i32, String) {
    let out = dir.join("out.txt");
    let file = std::fs::File::create(&out).expect("output file");
    let state = dir.join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_grace"))
        .args(["serve", "--config", "grace.toml", "--state-dir"])
        .arg(&state)
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
                "serve did not end by itself: {}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&out).expect("output");
    (status.code().unwrap_or(-1), text)
}

#[test]
fn serve_ends_when_its_significant_kernel_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("grace.toml"), CONFIG).expect("config");
    let (code, out) = serve(dir.path(), Duration::from_secs(20));
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("crashed").exists(), "main ran twice: {out}");
    assert!(
        out.contains("significant child main ended"),
        "the reason names the kernel: {out}"
    );
    assert!(out.contains("Completed"), "{out}");
}
