//! The log files of the real `grace watch` and `grace serve`: one record schema for
//! both, rotated by size, one copy of each record (nothing in `logs/serve.out`), spans
//! that name the kernel, and journald priorities on a stderr that is the journal.

mod watchdog_support;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use serde_json::Value;
use watchdog_support::{alive, poll, signal, Instance, Proc};

const SECS: Duration = Duration::from_secs(15);

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?}: {e}: {l}")))
        .collect()
}

/// Records of a log and its rotated files, oldest first.
fn all_records(log: &Path) -> Vec<Value> {
    let mut all = Vec::new();
    for p in grace::telemetry::rotated_files(log).into_iter().rev() {
        all.extend(records(&p));
    }
    all.extend(records(log));
    all
}

fn serve_records(inst: &Instance) -> Vec<Value> {
    all_records(&inst.paths.log_file())
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn serve_and_watchdog_write_one_rotated_schema_once() {
    let inst =
        Instance::new("min_uptime = \"100ms\"\n[logging]\nmax_file_size = \"2KB\"\nmax_files = 2");
    let out = inst.run(&["start", "--port", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(poll(SECS, || !inst.events_named("serve.ready").is_empty()));
    assert!(poll(SECS, || serve_records(&inst)
        .iter()
        .any(|r| r["message"] == "serve ready")));
    // Serve is replaced a few times: the watchdog's log grows too.
    for _ in 0..3 {
        let pid = ServeInfo::read(&inst.paths)
            .ok()
            .flatten()
            .expect("serve.json")
            .pid;
        signal(pid, Signal::SIGKILL);
        assert!(poll(SECS, || ServeInfo::read(&inst.paths)
            .ok()
            .flatten()
            .is_some_and(|i| i.pid != pid && alive(i.pid))));
    }
    assert!(poll(SECS, || !grace::telemetry::rotated_files(
        &inst.paths.watchdog_log()
    )
    .is_empty()));

    // Rotated by size: at most two rotated files, none past the size by more than a
    // record, every line a whole record.
    for log in [inst.paths.log_file(), inst.paths.watchdog_log()] {
        let rotated = grace::telemetry::rotated_files(&log);
        assert!(!rotated.is_empty(), "{log:?} was never rotated");
        assert!(rotated.len() <= 2, "{rotated:?}");
        for p in rotated.iter().chain([&log]) {
            let len = std::fs::metadata(p).expect("file").len();
            assert!(len <= 2_000 + 1_000, "{p:?} is {len} bytes");
            records(p);
        }
    }

    // One schema: the same keys in a record of each, each key its type.
    let wd = all_records(&inst.paths.watchdog_log())
        .into_iter()
        .rfind(|r| r["message"] == "serve.started")
        .expect("watchdog record");
    let serve = serve_records(&inst)
        .into_iter()
        .rfind(|r| r["message"] == "serve ready")
        .expect("serve record");
    assert_eq!(keys(&wd), keys(&serve), "{wd}\n{serve}");
    let expected: BTreeSet<String> = ["timestamp", "level", "target", "message", "pid", "fields"]
        .map(String::from)
        .into();
    assert_eq!(keys(&wd), expected);
    for r in [&wd, &serve] {
        assert!(
            r["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{r}"
        );
        assert_eq!(r["level"], "INFO");
        assert!(r["pid"].is_u64() && r["fields"].is_object(), "{r}");
    }
    assert_eq!(wd["target"], "grace::watchdog");
    assert_eq!(serve["target"], "grace::serve");

    // Spans name Grace's kernels and supervisors, never ractor's bare actor.
    let all = serve_records(&inst);
    assert!(
        all.iter().any(|r| r["span"]["name"] == "kernel"
            && r["span"]["kernel"].is_string()
            && r["span"]["supervisor"].is_string()),
        "no record names its kernel"
    );
    assert!(all.iter().all(|r| r["span"]["name"] != "Actor"));

    // One copy: serve's stderr, captured by the background watchdog, holds no record.
    let captured = std::fs::read_to_string(inst.paths.serve_output()).unwrap_or_default();
    assert!(
        captured.is_empty(),
        "records copied to serve.out:\n{captured}"
    );
    let out = inst.run(&["stop", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `grace watch` with stderr on `file` and `JOURNAL_STREAM` set to `stream`.
fn watch_into(inst: &Instance, file: &Path, stream: &str) -> Proc {
    let err = std::fs::File::create(file).expect("stderr file");
    Proc(
        inst.grace(&["watch", "--port", "0"])
            .env("JOURNAL_STREAM", stream)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn grace watch"),
    )
}

fn dev_ino(p: &Path) -> String {
    let m = std::fs::metadata(p).expect("stat");
    format!("{}:{}", m.dev(), m.ino())
}

#[test]
fn stderr_that_is_the_journal_gets_syslog_priorities_and_only_text() {
    let inst = Instance::new("min_uptime = \"100ms\"");
    let file = inst.root().join("journal");
    std::fs::write(&file, "").expect("create");
    let mut w = watch_into(&inst, &file, &dev_ino(&file));
    assert!(poll(SECS, || !inst.events_named("serve.ready").is_empty()));
    assert!(poll(SECS, || std::fs::read_to_string(&file)
        .is_ok_and(|t| t.contains("serve ready"))));
    // A killed serve is a warning.
    let pid = ServeInfo::read(&inst.paths)
        .ok()
        .flatten()
        .expect("serve.json")
        .pid;
    signal(pid, Signal::SIGKILL);
    assert!(poll(SECS, || !inst
        .events_named("grace.restart.success")
        .is_empty()));
    signal(w.id(), Signal::SIGTERM);
    assert!(w.wait().expect("wait").success());

    let text = std::fs::read_to_string(&file).expect("read");
    for line in text.lines() {
        let p = line.get(..3).unwrap_or_default();
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&p),
            "no priority: {line}"
        );
        assert!(!line.contains("{\"timestamp\""), "JSON on stderr: {line}");
    }
    // The watchdog's records and serve's, each at its level.
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>INFO  serve.started")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("<4>WARN  serve.exited")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("<6>INFO  serve ready")),
        "{text}"
    );
}

#[test]
fn a_journal_stream_of_another_file_is_not_the_journal() {
    let inst = Instance::new("min_uptime = \"100ms\"");
    let file = inst.root().join("stderr");
    let other = inst.root().join("elsewhere");
    std::fs::write(&other, "").expect("create");
    let mut w = watch_into(&inst, &file, &dev_ino(&other));
    assert!(poll(SECS, || std::fs::read_to_string(&file)
        .is_ok_and(|t| t.contains("serve ready"))));
    signal(w.id(), Signal::SIGTERM);
    assert!(w.wait().expect("wait").success());
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(
            !line.starts_with('<'),
            "a priority without the journal: {line}"
        );
        assert!(!line.contains("{\"timestamp\""), "JSON on stderr: {line}");
    }
}
