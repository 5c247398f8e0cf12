//! A damaged audit log does not hold the service hostage: the real `grace serve` starts
//! on a log with a flipped byte in the middle, sets it aside, raises a critical alert
//! and opens an incident; `grace audit verify` checks both files, with exit status 1
//! before, 0 after, and 1 again when the set-aside file is changed or removed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grace::audit::{AuditConfig, AuditLog};
use grace::state::{ServeInfo, StatePaths};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

fn grace(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_grace"));
    c.arg("--config")
        .arg(dir.join("grace.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("GRACE_STATE_DIR");
    c
}

fn verify(dir: &Path) -> (i32, String) {
    let out = grace(dir, &["audit", "verify"])
        .output()
        .expect("grace runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Flips one byte inside the payload of the record at `offset`.
fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize + 60] ^= 0x20;
    std::fs::write(path, &bytes).expect("write");
}

fn offsets(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).expect("read");
    let (mut out, mut pos) = (Vec::new(), 0usize);
    while pos + 44 <= bytes.len() {
        out.push(pos as u64);
        pos += 44 + u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4")) as usize;
    }
    out
}

#[test]
fn serve_starts_on_a_damaged_audit_log_and_verify_checks_both_files() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    std::fs::write(dir.join("grace.toml"), "").expect("config");
    let paths = StatePaths::new(dir.join("state"));
    paths.create().expect("state dir");
    {
        let log = AuditLog::open(&paths.audit_log(), &AuditConfig::default()).expect("open");
        for i in 0..10 {
            log.append("test.record", json!({ "i": i, "pad": "x".repeat(40) }))
                .expect("append");
        }
        log.sync().expect("sync");
    }
    let at = offsets(&paths.audit_log());
    flip(&paths.audit_log(), at[4]);
    let (code, text) = verify(dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BAD") && text.contains("record #4"), "{text}");

    let mut serve = grace(dir, &["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(8);
    let incident = loop {
        let incidents = std::fs::read_to_string(paths.incidents()).unwrap_or_default();
        if let Some(line) = incidents.lines().find(|l| l.contains("audit_log_damaged")) {
            break line.to_owned();
        }
        if Instant::now() > deadline || matches!(serve.try_wait(), Ok(Some(_))) {
            let _ = serve.kill();
            panic!("no incident; serve: {:?}", serve.try_wait());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let running = ServeInfo::read(&paths).ok().flatten().map(|i| i.pid);
    assert_eq!(running, Some(serve.id()), "serve is up");
    let _ = kill(Pid::from_raw(serve.id() as i32), Signal::SIGTERM);
    let status = serve.wait().expect("wait serve");
    assert!(status.success(), "{status}");

    let inc: serde_json::Value = serde_json::from_str(&incident).expect("incident json");
    assert_eq!(inc["trigger"], "audit_integrity");
    assert_eq!(inc["component"], "audit_log");
    assert_eq!(inc["severity"], "critical");
    let alerts: Vec<String> = std::fs::read_dir(paths.alerts_dir())
        .expect("alerts")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("critical_"))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = std::fs::read_to_string(paths.alerts_dir().join(&alerts[0])).expect("alert");
    assert!(alert.contains("audit.log_damaged"), "{alert}");

    let damaged: Vec<_> = std::fs::read_dir(paths.root())
        .expect("state")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("audit.log.damaged-"))
        })
        .collect();
    assert_eq!(damaged.len(), 1, "{damaged:?}");

    let (code, text) = verify(dir);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("OK: ") && text.contains("SET ASIDE: "),
        "{text}"
    );
    assert!(text.contains("record #4"), "{text}");

    // The set-aside file changed since: its good records no longer match the link.
    flip(&damaged[0], at[1]);
    let (code, text) = verify(dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("NOT LINKED"), "{text}");

    std::fs::remove_file(&damaged[0]).expect("remove");
    let (code, text) = verify(dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("MISSING"), "{text}");
}
