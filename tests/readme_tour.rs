//! README's short tour runs as written: the console blocks marked `<!-- tour` are run in
//! order, each command through `sh` in a fresh directory with the built `grace` first on
//! the PATH and a free port in place of 8000, and each command's output must be the one
//! README shows, up to what differs from run to run (times, pids, sizes, ids, the path
//! of the directory) and the few things listed in `VARIES`. Each command must exit 0.
//! Commands that only read (`grace status`, `grace incidents`, `grace audit verify`)
//! are run again until their output matches, for at most a minute: the tour's reader
//! waits too.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use regex::Regex;

/// One command of the tour and the output README shows for it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: String,
}

/// The steps of every console block that follows a `<!-- tour` comment, in order.
fn tour(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("<!-- tour") {
            continue;
        }
        assert_eq!(
            lines.next(),
            Some("```console"),
            "a tour block is a console block"
        );
        let mut continued = false;
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            if let Some(cmd) = line.strip_prefix("$ ") {
                steps.push(Step {
                    command: cmd.to_owned(),
                    expected: String::new(),
                });
            } else if continued {
                let last = steps.last_mut().expect("a command");
                last.command.push('\n');
                last.command.push_str(line);
            } else {
                let last = steps.last_mut().expect("output follows a command");
                last.expected.push_str(line);
                last.expected.push('\n');
            }
            continued = line.ends_with('\\');
        }
    }
    steps
}

/// What differs for reasons outside the tour, with why: replaced by the same text on both
/// sides before they are compared.
const VARIES: &[(&str, &str)] = &[
    // The mechanism depends on the host: a writable cgroup v2, or the subreaper.
    (r"(?m)^containment:.*$", "containment: <mechanism>"),
    // The watchdog's last exit depends on what ran in this state directory before.
    (r"\(last exit: [^)]*\)", "(last exit: <exit>)"),
];

/// What differs from run to run, made the same: timestamps, incident ids, pids, times,
/// sizes, CPU and memory, an incident's occurrences, and the spacing of columns.
fn normalize(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (r"inc_\d{8}_\d{6}_\d+", "<incident>"),
        (r"\bpid \d+", "pid <n>"),
        (r"\bup (\d+[smhd] ?)+", "up <t>"),
        (r"\d+(\.\d+)?(ms\b|s\b|%)", "<n>$2"),
        (r"\d+(\.\d+)? (MiB|KiB|bytes|records)\b", "<n> $2"),
        (r"(?m)^(<incident>.*\S)\s+\d+$", "$1 <n>"),
    ];
    let mut t = text.to_owned();
    for (pattern, with) in VARIES.iter().chain(rules) {
        t = Regex::new(pattern)
            .expect("pattern")
            .replace_all(&t, *with)
            .into_owned();
    }
    t.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The tour's directory, with `grace` first on the PATH; stops whatever the tour
/// started when dropped, even after a failure.
struct Tour {
    dir: tempfile::TempDir,
    bin: tempfile::TempDir,
    port: u16,
}

impl Tour {
    fn new() -> Tour {
        let bin = tempfile::tempdir().expect("bin dir");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_grace"), bin.path().join("grace"))
            .expect("symlink grace");
        Tour {
            dir: tempfile::tempdir().expect("tour dir"),
            bin,
            port: free_port(),
        }
    }

    fn run(&self, command: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg("-c")
            .arg(command.replace("8000", &self.port.to_string()))
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env_remove("GRACE_STATE_DIR")
            .env_remove("GRACE_CHAOS")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("NO_COLOR", "1")
            .output()
            .expect("run sh")
    }

    /// The output as README would show it: this directory's path and port as README's.
    fn shown(&self, out: &Output) -> String {
        let dir = std::fs::canonicalize(self.dir.path()).expect("canonical dir");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .replace(&dir.display().to_string(), "/home/me/grace")
        .replace(&self.port.to_string(), "8000")
    }
}

impl Drop for Tour {
    fn drop(&mut self) {
        let _ = self.run("grace stop --all");
        let paths = grace::state::StatePaths::new(self.dir.path().join(".grace"));
        let mut left = grace::watchdog::supervised_processes(&paths);
        left.extend(grace::state::lock_holder(&paths.watchdog_lock()));
        for pid in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn reads_only(command: &str) -> bool {
    ["grace status", "grace incidents", "grace audit verify"]
        .iter()
        .any(|c| command.starts_with(c))
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let steps = tour(&readme);
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    assert!(
        commands
            .first()
            .is_some_and(|c| c.starts_with("grace start"))
            && commands
                .last()
                .is_some_and(|c| c.starts_with("grace status"))
            && commands.iter().any(|c| c.contains("/api/chaos/")),
        "the tour starts Grace, injects a fault and ends stopped: {commands:#?}"
    );
    let t = Tour::new();
    for step in &steps {
        let want = normalize(&step.expected);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = t.run(&step.command);
            let got = t.shown(&out);
            let ok = out.status.success();
            if ok && normalize(&got) == want {
                break;
            }
            if !reads_only(&step.command) || Instant::now() >= deadline {
                panic!(
                    "$ {}\nexit status {:?}\n--- README shows (normalized):\n{want}\n--- got (normalized):\n{}\n--- got:\n{got}",
                    step.command,
                    out.status.code(),
                    normalize(&got)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn normalizing_keeps_what_the_tour_checks() {
    let a = "inc_20261128_065025_937654  resolved  verified  model_integrity  m.pt  restore_model_weights  0.02s  1\n";
    let b = "inc_20261208_001314_972353  resolved  verified  model_integrity  m.pt  restore_model_weights  0.31s  2\n";
    assert_eq!(normalize(a), normalize(b));
    let verifying = b.replace("resolved  verified", "verifying  -");
    assert_ne!(normalize(a), normalize(&verifying));
    assert_ne!(
        normalize("kernels:      21 total, 21 running, 0 failed, 0 degraded"),
        normalize("kernels:      21 total, 20 running, 1 failed, 0 degraded"),
        "counts are compared"
    );
    assert_ne!(normalize("exit status 3"), normalize("exit status 0"));
    assert_eq!(
        normalize("serve:        pid 4778, up 1m 4s, cpu 8.0%, mem 27.8 MiB"),
        normalize("serve: pid 12, up 0s, cpu 0.0%, mem 1.5 MiB")
    );
}
