//! The operator's command line with the real binary: shell completions, `NO_COLOR` on a
//! real terminal (a pseudo-terminal), `grace logs` filters, `grace chaos list`'s whole
//! descriptions, `grace init` beside existing files, and `GRACE_CHAOS`.

mod watchdog_support;

use std::io::Read;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use watchdog_support::{poll, signal, Instance, Proc};

const CONFIG: &str =
    "[triggers]\nenabled = false\n\n[[kernel]]\nname = \"kv_store\"\nkind = \"kv_store\"\n";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn completions_name_the_subcommands_for_every_shell() {
    let inst = Instance::new("");
    let out = inst.run(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _grace"), "{script}");
    for sub in [
        "serve",
        "watch",
        "start",
        "stop",
        "status",
        "logs",
        "chaos",
        "completions",
    ] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    assert!(script.contains("--since"), "options are completed too");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = inst.run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("status"),
            "{shell}"
        );
    }
    let out = inst.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Everything `grace <args>` writes to its terminal (a pseudo-terminal on stdin, stdout
/// and stderr) until `ready` holds for the instance, then SIGTERM and the rest.
fn on_a_terminal(inst: &Instance, args: &[&str], no_color: bool) -> Vec<u8> {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = inst.grace(args);
    let slave = || Stdio::from(pty.slave.try_clone().expect("dup"));
    cmd.stdin(slave()).stdout(slave()).stderr(slave());
    cmd.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let mut child = Proc(cmd.spawn().expect("spawn grace"));
    // Only the child may hold the terminal: the reader sees its end once it exits.
    drop(cmd);
    drop(pty.slave);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let mut master = std::fs::File::from(pty.master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every holder of the terminal is gone.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        })
    };
    let up = poll(Duration::from_secs(30), || {
        ServeInfo::read(&inst.paths).ok().flatten().is_some()
            && String::from_utf8_lossy(&seen.lock().expect("lock")).contains("serve starting")
    });
    assert!(
        up,
        "grace {args:?} never came up; output: {}",
        String::from_utf8_lossy(&seen.lock().expect("lock"))
    );
    signal(child.id(), Signal::SIGTERM);
    let _ = child.wait();
    let _ = reader.join();
    let out = seen.lock().expect("lock").clone();
    out
}

#[test]
fn no_color_keeps_escapes_off_the_terminal_for_serve_and_watch() {
    let inst = Instance::new("");
    std::fs::write(&inst.config, CONFIG).expect("config");
    let coloured = on_a_terminal(&inst, &["serve", "--port", "0"], false);
    assert!(
        coloured.contains(&0x1b),
        "without NO_COLOR serve colours its terminal output (the check can fail): {}",
        String::from_utf8_lossy(&coloured)
    );
    let plain = on_a_terminal(&inst, &["serve", "--port", "0"], true);
    assert!(
        !plain.contains(&0x1b),
        "ESC with NO_COLOR=1: {:?}",
        String::from_utf8_lossy(&plain)
    );
    let watch = on_a_terminal(&inst, &["watch", "--port", "0"], true);
    assert!(
        String::from_utf8_lossy(&watch).contains("watchdog.started"),
        "{}",
        String::from_utf8_lossy(&watch)
    );
    assert!(
        !watch.contains(&0x1b),
        "ESC from watch (or the serve it runs) with NO_COLOR=1: {:?}",
        String::from_utf8_lossy(&watch)
    );
}

#[test]
fn logs_filter_by_level_source_and_time_across_rotated_files() {
    let inst = Instance::new("");
    inst.paths.create().expect("state dir");
    let rec = |ts: &str, level: &str, target: &str, msg: &str| {
        format!(
            "{{\"timestamp\":\"{ts}\",\"level\":\"{level}\",\"target\":\"{target}\",\"message\":\"{msg}\"}}\n"
        )
    };
    let old = chrono::Utc::now() - chrono::Duration::hours(2);
    let new = chrono::Utc::now() - chrono::Duration::minutes(1);
    let ts =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::fs::write(
        inst.paths.log_file().with_extension("jsonl.1"),
        rec(&ts(old), "ERROR", "grace::http::server", "old http error"),
    )
    .expect("rotated log");
    std::fs::write(
        inst.paths.log_file(),
        rec(&ts(new), "INFO", "grace::http::server", "new http info")
            + &rec(&ts(new), "WARN", "grace::tree", "new tree warning"),
    )
    .expect("log");
    std::fs::write(
        inst.paths.watchdog_log(),
        format!(
            "{{\"timestamp\":\"{}\",\"level\":\"ERROR\",\"event\":\"watchdog.crash_loop\"}}\n",
            ts(new)
        ),
    )
    .expect("watchdog log");
    let logs = |args: &[&str]| {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let out = inst.run(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all = logs(&[]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(
        all.lines()
            .next()
            .is_some_and(|l| l.contains("old http error")),
        "{all}"
    );
    let warn = logs(&["--level", "warn"]);
    assert_eq!(warn.lines().count(), 3, "{warn}");
    assert!(!warn.contains("new http info"), "{warn}");
    let http = logs(&["--source", "http"]);
    assert_eq!(http.lines().count(), 2, "{http}");
    assert!(
        http.contains("old http error") && http.contains("new http info"),
        "{http}"
    );
    let watchdog = logs(&["--source", "watchdog"]);
    assert!(
        watchdog.contains("watchdog.crash_loop") && watchdog.lines().count() == 1,
        "{watchdog}"
    );
    let recent = logs(&["--since", "30m", "--level", "error"]);
    assert_eq!(recent.lines().count(), 1, "{recent}");
    assert!(recent.contains("watchdog.crash_loop"), "{recent}");
    let from = ts(old + chrono::Duration::minutes(1));
    let since_ts = logs(&["--since", &from, "--source", "grace::http"]);
    assert_eq!(since_ts.lines().count(), 1, "{since_ts}");

    let bad = inst.run(&["logs", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("neither a duration"), "{}", text(&bad));
    let bad = inst.run(&["logs", "--level", "loud"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn chaos_list_shows_every_description_whole_wrapped_between_words() {
    let inst = Instance::new("");
    let out = inst
        .grace(&["chaos", "list"])
        .env("COLUMNS", "80")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    for line in listed.lines() {
        assert!(
            line.chars().count() <= 80 || !line.trim().contains(' '),
            "line longer than 80 columns: {line:?}"
        );
    }
    let words: Vec<&str> = listed.split_whitespace().collect();
    for s in grace::chaos::builtins().expect("scenarios") {
        let want: Vec<&str> = s.description.split_whitespace().collect();
        assert!(
            words.windows(want.len()).any(|w| w == want.as_slice()),
            "{}: description not shown whole:\n{listed}",
            s.name
        );
    }
}

#[test]
fn init_writes_what_is_missing_and_names_what_it_kept() {
    let inst = Instance::new("");
    let dir = inst.root().join("project");
    let mine = "name: restart_kernel\n# mine\n";
    std::fs::create_dir_all(dir.join("playbooks")).expect("playbooks dir");
    std::fs::write(dir.join("playbooks/restart_kernel.yaml"), mine).expect("playbook");
    let out = inst.run(&["init", dir.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("kept  ") && said.contains("restart_kernel.yaml (exists"),
        "{said}"
    );
    assert!(
        said.contains(&format!("wrote {}", dir.join("grace.toml").display())),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("playbooks/restart_kernel.yaml")).expect("read"),
        mine,
        "an existing file is never overwritten without --force"
    );
    assert!(dir
        .join("playbooks/emergency_critical_kernel_recovery.yaml")
        .is_file());
    let again = inst.run(&["init", dir.to_str().expect("utf8")]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to write"),
        "{}",
        text(&again)
    );
    assert!(!text(&again).contains("wrote"), "{}", text(&again));

    let help = inst.run(&["init", "--help"]);
    let help = text(&help);
    assert!(
        !help.contains("chaos"),
        "init --help promises what init does not do: {help}"
    );
    assert!(help.contains("playbooks"), "{help}");
}

#[test]
fn grace_chaos_in_the_environment_turns_the_chaos_endpoints_on() {
    let inst = Instance::new("");
    std::fs::write(&inst.config, CONFIG).expect("config");
    let bad = inst
        .grace(&["serve", "--port", "0"])
        .env("GRACE_CHAOS", "maybe")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("GRACE_CHAOS"), "{}", text(&bad));

    let mut serve = Proc(
        inst.grace(&["serve", "--port", "0"])
            .env("GRACE_CHAOS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve"),
    );
    let info = || ServeInfo::read(&inst.paths).ok().flatten();
    assert!(
        poll(Duration::from_secs(20), || info().is_some()),
        "serve never wrote serve.json"
    );
    let addr = info().expect("serve.json").health_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut enabled = None;
    assert!(poll(Duration::from_secs(20), || {
        let a = rt.block_on(grace::alerts::http::get(
            addr,
            "/operator/dashboard",
            Duration::from_secs(2),
        ));
        enabled = a
            .ok()
            .filter(|a| a.status == 200)
            .and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
            .map(|v| v["chaos_enabled"].clone());
        enabled.is_some()
    }));
    assert_eq!(
        enabled,
        Some(serde_json::json!(true)),
        "the config says false"
    );
    signal(serve.id(), Signal::SIGTERM);
    let _ = serve.wait();
}

#[test]
fn start_beside_a_foreground_serve_fails_and_stop_all_ends_that_serve() {
    let inst = Instance::new("");
    std::fs::write(&inst.config, CONFIG).expect("config");
    let mut serve = Proc(
        inst.grace(&["serve", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve"),
    );
    assert!(
        poll(Duration::from_secs(20), || ServeInfo::read(&inst.paths)
            .ok()
            .flatten()
            .is_some()),
        "serve never wrote serve.json"
    );
    for cmd in ["start", "watch"] {
        let out = inst.run(&[cmd, "--port", "0"]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(&format!("a grace serve (pid {}) already runs", serve.id()))
                && said.contains("without a watchdog"),
            "{cmd}: {said}"
        );
        assert_eq!(
            grace::state::lock_holder(&inst.paths.watchdog_lock()),
            None,
            "{cmd} left a watchdog behind"
        );
    }
    let began = std::time::Instant::now();
    let out = inst.run(&["stop", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "stop --all took {:?}",
        began.elapsed()
    );
    assert!(
        serve.wait().is_ok_and(|s| s.code() == Some(0)),
        "serve stopped gracefully"
    );
    let out = inst.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}
