//! A tree built around one main kernel: with `[kernels] auto_shutdown`, serve ends by
//! itself, exit status 0, when its significant kernel finishes, stopping the rest; a
//! crash of that kernel is still repaired.

mod run_support;

use std::time::Duration;

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

#[test]
fn serve_ends_when_its_significant_kernel_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("grace.toml"), CONFIG).expect("config");
    let state = dir.path().join("state");
    let state = state.to_str().expect("utf-8 path");
    let (code, out) = run_support::run_grace(
        dir.path(),
        &["serve", "--config", "grace.toml", "--state-dir", state],
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("crashed").exists(), "main ran twice: {out}");
    assert!(
        out.contains("significant child main ended"),
        "the reason names the kernel: {out}"
    );
    assert!(out.contains("Completed"), "{out}");
}
