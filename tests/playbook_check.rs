//! `grace init` writes the default playbooks and `grace check` validates them; a broken
//! playbook makes `grace check` exit with status 2 naming the file and line.

use std::process::Command;

fn grace(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grace"))
        .args(args)
        .current_dir(dir)
        .env_remove("GRACE_STATE_DIR")
        .output()
        .expect("grace runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn init_writes_the_playbooks_and_check_validates_them() {
    let d = tempfile::tempdir().expect("tempdir");
    let (code, out) = grace(d.path(), &["init"]);
    assert_eq!(code, 0, "{out}");
    assert!(d
        .path()
        .join("playbooks/emergency_critical_kernel_recovery.yaml")
        .is_file());
    let (code, out) = grace(d.path(), &["check"]);
    assert_eq!(code, 0, "{out}");
    // Every shipped playbook loads: the snapshot actions provide what the four
    // snapshot playbooks require.
    assert!(out.contains("17 playbooks"), "{out}");
    assert!(!out.contains("skipped"), "{out}");

    std::fs::write(
        d.path().join("playbooks/restart_kernel.yaml"),
        "name: restart_kernel\nslo: 30s\nsteps:\n  - name: restart\n    action: restart_kernel\n    retry_delay: a while\n",
    )
    .expect("break a playbook");
    let (code, out) = grace(d.path(), &["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("restart_kernel.yaml:6:"), "{out}");
    assert!(out.contains("bad duration"), "{out}");
}
