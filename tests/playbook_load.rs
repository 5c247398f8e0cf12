//! Loading playbooks: the shipped defaults, a directory overriding them, and errors
//! that name the file and line (and make `grace` exit with status 2).

use std::path::Path;

use async_trait::async_trait;
use grace::config::ConfigError;
use grace::playbook::{
    load_playbooks, load_playbooks_with, Action, ActionContext, ActionError, ActionRegistry, Args,
    DEFAULT_PLAYBOOKS,
};
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write playbook");
}

fn load_err(text: &str) -> String {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "bad.yaml", text);
    let e = load_playbooks(Some(d.path())).expect_err("must fail");
    let status = grace::cli::exit_status(&anyhow::Error::new(ConfigError(e.0.clone())));
    assert_eq!(status, 2, "a playbook error is a configuration error");
    e.0
}

fn assert_at(err: &str, line: usize, needle: &str) {
    let at = format!("bad.yaml:{line}:");
    assert!(err.contains(&at), "expected {at} in: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn the_defaults_load_including_those_needing_snapshots() {
    let set = load_playbooks(None).expect("defaults are valid");
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
    assert_eq!(set.len(), DEFAULT_PLAYBOOKS.len());
    let emergency = set
        .get("emergency_critical_kernel_recovery")
        .expect("emergency playbook");
    assert_eq!(emergency.steps.len(), 10);
    assert_eq!(
        emergency.slo.map(|s| s.0),
        Some(std::time::Duration::from_secs(120))
    );
    let group = emergency.steps[1]
        .parallel
        .as_ref()
        .expect("parallel group");
    assert_eq!(group.len(), 4);
    assert_eq!(
        set.for_trigger("heartbeat_failure").map(|p| p.name.clone()),
        Some("restart_kernel".to_owned())
    );
}

#[test]
fn the_repository_playbooks_directory_is_what_is_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    for (file, text) in DEFAULT_PLAYBOOKS {
        let on_disk = std::fs::read_to_string(dir.join(file)).expect("file in playbooks/");
        assert_eq!(on_disk, text, "{file}");
    }
    let set = load_playbooks(Some(&dir)).expect("the directory loads over the defaults");
    assert_eq!(set.len(), load_playbooks(None).expect("defaults").len());
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let e = load_err("name: p\nsteps:\n  - name: a\n    action: [wait\n");
    assert!(e.contains("bad.yaml:"), "{e}");
}

#[test]
fn unknown_keys_name_their_line() {
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: wait\n    args: { duration: 1s }\n    retires: 2\n",
    );
    assert_at(&e, 6, "retires");
    let e = load_err("name: p\nslo: 1s\ntrigers: [x]\nsteps: []\n");
    assert_at(&e, 3, "trigers");
}

#[test]
fn a_bad_duration_names_its_line() {
    let e = load_err("name: p\nslo: soon\nsteps:\n  - name: a\n    action: notify\n");
    assert_at(&e, 2, "bad duration");
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: notify\n  - name: b\n    action: notify\n    timeout: 3 parsecs\n",
    );
    assert_at(&e, 7, "bad duration");
}

#[test]
fn an_unknown_action_names_the_line_of_its_step() {
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: notify\n  - name: b\n    action: reboot_universe\n",
    );
    assert_at(&e, 6, "unknown action \"reboot_universe\"");
    let e = load_err(
        "name: p\nsteps:\n  - name: g\n    parallel:\n      - name: x\n        action: notify\n      - name: y\n        action: nope\n",
    );
    assert_at(&e, 8, "unknown action \"nope\"");
}

#[test]
fn bad_arguments_and_templates_name_their_line() {
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: restart_kernel\n    args:\n      kernel: \"{{kernel_name}}\"\n",
    );
    assert_at(&e, 6, "unknown template variable");
    let e = load_err("name: p\nsteps:\n  - name: a\n    action: emergency_mode\n");
    assert_at(&e, 4, "on: true");
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: restart_kernel\n    args: { kernal: x }\n",
    );
    assert_at(&e, 4, "kernal");
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: restart_kernel\n    args: { kernel: \"*\" }\n",
    );
    assert_at(&e, 4, "when: unhealthy");
}

#[test]
fn structural_mistakes_are_reported() {
    let e = load_err("name: p\nsteps: []\n");
    assert_at(&e, 2, "at least one step");
    let e = load_err(
        "name: p\nsteps:\n  - name: a\n    action: notify\n  - name: a\n    action: notify\n",
    );
    assert_at(&e, 3, "used twice");
    let e = load_err("name: p\nsteps:\n  - name: a\n    args: {}\n");
    assert_at(&e, 3, "exactly one of");
    let e = load_err(
        "name: p\nrate_limit: { max: 0, window: 1m }\nsteps:\n  - name: a\n    action: notify\n",
    );
    assert_at(&e, 2, "max >= 1");
}

#[test]
fn a_directory_overrides_and_adds_but_may_not_repeat_itself() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        "mine.yaml",
        "name: restart_kernel\ntriggers: [heartbeat_failure]\nsteps:\n  - name: only\n    action: notify\n",
    );
    write(
        d.path(),
        "extra.yml",
        "name: extra\ntriggers: [my_trigger]\nsteps:\n  - name: w\n    action: wait\n    args: { duration: 1s }\n",
    );
    let set = load_playbooks(Some(d.path())).expect("loads");
    let rk = set.get("restart_kernel").expect("overridden");
    assert_eq!(rk.steps.len(), 1);
    assert!(set
        .file("restart_kernel")
        .is_some_and(|f| f.ends_with("mine.yaml")));
    assert_eq!(
        set.for_trigger("my_trigger").map(|p| p.name.clone()),
        Some("extra".into())
    );

    write(
        d.path(),
        "zz_copy.yaml",
        "name: extra\nsteps:\n  - name: w\n    action: notify\n",
    );
    let e = load_playbooks(Some(d.path())).expect_err("duplicate name");
    assert!(
        e.0.contains("zz_copy.yaml:1:") && e.0.contains("also defined in"),
        "{}",
        e.0
    );
}

#[test]
fn a_missing_directory_is_an_error_that_says_how_to_fix_it() {
    let e = load_playbooks(Some(Path::new("/nonexistent/playbooks"))).expect_err("missing");
    assert!(
        e.0.contains("/nonexistent/playbooks") && e.0.contains("[playbooks] dir"),
        "{}",
        e.0
    );
}

struct Noop;

#[async_trait]
impl Action for Noop {
    async fn run(&self, _: &ActionContext, _: &Args) -> Result<Value, ActionError> {
        Ok(Value::Null)
    }
}

#[test]
fn playbooks_needing_snapshots_load_once_the_capability_exists() {
    let mut actions = ActionRegistry::builtin();
    for a in [
        "create_snapshot",
        "rollback_deployment",
        "quarantine",
        "restore_model_weights",
        "restore_from_snapshot",
    ] {
        actions.register(a, Noop);
    }
    actions.provide("snapshots");
    let set = load_playbooks_with(None, &actions).expect("loads");
    assert!(set.skipped().is_empty());
    assert_eq!(set.len(), DEFAULT_PLAYBOOKS.len());
    assert_eq!(
        set.for_trigger("trust_score").map(|p| p.name.clone()),
        Some("rollback_deployment".into())
    );
}
