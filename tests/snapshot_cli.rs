//! `grace snapshot`, the command a deploy runs: the real binary snapshots every watched
//! file and leaves config_drift's accept marker in the state directory.

use std::path::Path;
use std::process::Command;

fn grace(config: &Path, state: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grace"))
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("grace runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn snapshot_files(state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for kind in std::fs::read_dir(state.join("snapshots")).expect("snapshots/") {
        let kind = kind.expect("entry").path();
        for f in std::fs::read_dir(&kind).expect("kind dir") {
            let name = f.expect("entry").file_name().to_string_lossy().into_owned();
            found.push(name);
        }
    }
    found.sort();
    found
}

#[test]
fn a_deploy_snapshots_the_watched_files_and_accepts_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("models")).expect("mkdir");
    std::fs::write(state.join("models/m.pt"), vec![3u8; 1000]).expect("weights");
    let app = dir.path().join("app.toml");
    std::fs::write(&app, "workers = 4\n").expect("app config");
    let config = dir.path().join("grace.toml");
    std::fs::write(
        &config,
        format!("[snapshots]\nfiles = [\"{}\"]\n", app.display()),
    )
    .expect("config");

    let (code, out) = grace(&config, &state, &["snapshot"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("m.pt") && out.contains("app.toml"), "{out}");
    let files = snapshot_files(&state);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("m_") && f.ends_with(".pt")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("app_") && f.ends_with(".toml")),
        "{files:?}"
    );
    let marker = state.join("accept_config_changes");
    assert!(marker.exists(), "the accept marker is left for serve");

    std::fs::remove_file(&marker).expect("rm");
    let (code, out) = grace(&config, &state, &["snapshot", "--no-accept"]);
    assert_eq!(code, 0, "{out}");
    assert!(!marker.exists());
}
