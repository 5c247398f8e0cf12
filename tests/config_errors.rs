//! Configuration errors through the real binary: `grace check` and `grace serve` both
//! exit 2 naming the file, line and column of the offending key, and a serve refused
//! this way leaves no state directory, `serve.json` or token behind.

mod run_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs `grace` with `args` in `dir`; returns its exit status and its output. A run
/// that lasts past a few seconds (a serve that started) fails the test.
fn grace(dir: &Path, args: &[&str]) -> (i32, String) {
    run_support::run_grace(dir, args, Duration::from_secs(8))
}

/// A temp dir holding `grace.toml` with `text`.
fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let file = d.path().join("grace.toml");
    std::fs::write(&file, text).expect("write config");
    (d, file)
}

/// Asserts that `grace check` and `grace serve` both refuse `text` with status 2 at
/// `file:line:col`, saying `needle`, and that the refused serve left no state.
fn refused(text: &str, line: usize, col: usize, needle: &str) {
    let (d, file) = config(text);
    refused_in(d.path(), &file, line, col, needle);
}

fn refused_in(dir: &Path, file: &Path, line: usize, col: usize, needle: &str) {
    let f = file.to_str().expect("utf-8 path");
    let at = format!("{f}:{line}:{col}: ");
    let (code, out) = grace(dir, &["check", "--config", f]);
    assert_eq!(code, 2, "check: {out}");
    assert!(out.contains(&at), "check: expected {at} in: {out}");
    assert!(out.contains(needle), "check: expected {needle:?} in: {out}");

    let state = dir.join("state");
    let s = state.to_str().expect("utf-8 path");
    let (code, out) = grace(
        dir,
        &["serve", "--config", f, "--state-dir", s, "--port", "0"],
    );
    assert_eq!(code, 2, "serve: {out}");
    assert!(out.contains(&at), "serve: expected {at} in: {out}");
    assert!(out.contains(needle), "serve: expected {needle:?} in: {out}");
    assert!(!state.join("serve.json").exists(), "serve.json written");
    assert!(!state.join("token").exists(), "token written");
    assert!(!state.exists(), "the state directory was created");
}

#[test]
fn an_exec_kernel_without_command_is_refused_at_its_table() {
    refused(
        "[heartbeat]\ninterval = \"5s\"\n\n[[kernel]]\nname = \"web\"\nkind = \"exec\"\n",
        4,
        1,
        "kernel web (kind exec): option command is required",
    );
}

#[test]
fn an_unknown_kind_is_refused_at_its_key_with_the_known_kinds() {
    refused(
        "[[kernel]]\nname = \"web\"\nkind = \"exce\"\n",
        3,
        1,
        "unknown kind \"exce\"; use one of exec, kv_store, model, worker_pool",
    );
}

#[test]
fn out_of_range_and_mistyped_options_are_refused_at_the_option() {
    refused(
        "[[kernel]]\nname = \"pool\"\nkind = \"worker_pool\"\noptions = { workers = -5 }\n",
        4,
        13,
        "option workers: invalid value: integer `-5`",
    );
    refused(
        "[[kernel]]\nname = \"pool\"\nkind = \"worker_pool\"\n\n[kernel.options]\nrate = 2.0\nworkers = 0\n",
        7,
        1,
        "option workers must be at least 1",
    );
    refused(
        "[[kernel]]\nname = \"e\"\nkind = \"exec\"\noptions = { command = \"true\", stop_timeout = 5 }\n",
        4,
        31,
        "option stop_timeout",
    );
}

#[test]
fn a_duplicate_kernel_name_is_refused_at_the_duplicate() {
    refused(
        "[[kernel]]\nname = \"a\"\nkind = \"model\"\n\n[[kernel]]\nname = \"b\"\nkind = \"model\"\n\n[[kernel]]\nname = \"a\"\nkind = \"kv_store\"\n",
        10,
        1,
        "kernel name \"a\" is used twice (first at line 2)",
    );
}

#[test]
fn a_bad_trigger_setting_is_refused_at_its_key() {
    refused(
        "[triggers.api_timeout]\nwindow = \"10s\"\nmin_timeouts = 0\n",
        3,
        1,
        "[triggers.api_timeout] min_timeouts: must be at least 1",
    );
}

#[test]
fn a_bad_playbook_beside_the_config_is_refused_at_its_key() {
    let (d, file) = config("[heartbeat]\ninterval = \"5s\"\n");
    let pb = d.path().join("playbooks");
    std::fs::create_dir(&pb).expect("mkdir");
    std::fs::write(
        pb.join("mine.yaml"),
        "name: mine\ntriggers: [my_trigger]\nsteps:\n  - name: first\n    action: reboot_universe\n",
    )
    .expect("write playbook");
    // The error is in the playbook, so its file is named, not the config's.
    let f = pb.join("mine.yaml");
    let at = format!("{}:5:5: ", f.display());
    for args in [
        vec!["check", "--config", file.to_str().expect("utf-8")],
        vec![
            "serve",
            "--config",
            file.to_str().expect("utf-8"),
            "--state-dir",
            "state",
            "--port",
            "0",
        ],
    ] {
        let (code, out) = grace(d.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(&at), "{args:?}: expected {at} in: {out}");
        assert!(out.contains("unknown action \"reboot_universe\""), "{out}");
    }
    assert!(!d.path().join("state").exists(), "serve created its state");
    // A YAML error carries serde's line and column.
    std::fs::write(
        pb.join("mine.yaml"),
        "name: mine\nsteps:\n  - name: a\n    action: [wait\n",
    )
    .expect("write playbook");
    let (code, out) = grace(
        d.path(),
        &["check", "--config", file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{}:", f.display())), "{out}");
    assert!(
        out.lines().any(|l| {
            let parts: Vec<&str> = l.split(':').collect();
            parts.len() > 4
                && parts[2].parse::<usize>().is_ok()
                && parts[3].parse::<usize>().is_ok()
        }),
        "no line:column in {out}"
    );
}

#[test]
fn a_missing_playbooks_directory_is_refused_at_its_key() {
    refused(
        "[playbooks]\ndry_run = false\ndir = \"nowhere\"\n",
        3,
        1,
        "playbooks directory",
    );
}

#[test]
fn a_good_configuration_passes_check() {
    let (d, file) = config(
        "[[kernel]]\nname = \"web\"\nkind = \"exec\"\noptions = { command = \"sleep\", args = [\"60\"], probe = { tcp = \"127.0.0.1:9\" } }\n\n[[kernel]]\nname = \"pool\"\nkind = \"worker_pool\"\n[kernel.options]\nworkers = 2\nmax_workers = 4\n",
    );
    let (code, out) = grace(
        d.path(),
        &["check", "--config", file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 kernels"), "{out}");
    assert!(out.contains("playbooks"), "{out}");
}
