//! The shipped systemd unit (`examples/deploy/grace.service`): `systemd-analyze verify`
//! finds nothing to say, `systemd-analyze security --offline=yes` rates it 2.5 or lower,
//! it declares what a deployment needs, and its `ExecStart` runs, on the config `grace
//! init` writes, a watchdog that tells systemd `READY=1` once serve is healthy and exits
//! 0 on SIGTERM; a missing config exits 2, which the unit does not restart.

mod deploy_support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use deploy_support::{grace_ok, status, Running, GRACE};
use nix::sys::signal::Signal;

const UNIT: &str = include_str!("../examples/deploy/grace.service");
/// Where the unit expects the binary.
const INSTALLED: &str = "/usr/local/bin/grace";

/// The values of `key=` in the unit, in order (a key may repeat).
fn values(key: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

fn value(key: &str) -> &'static str {
    match values(key).as_slice() {
        [v] => v,
        other => panic!("{key}= is set {} times in the unit", other.len()),
    }
}

/// The `ExecStart` command line, split on spaces (the unit quotes nothing).
fn exec_start() -> Vec<&'static str> {
    value("ExecStart").split_whitespace().collect()
}

/// The value after `flag` on the `ExecStart` command line.
fn exec_arg(flag: &str) -> &'static str {
    let argv = exec_start();
    let i = argv
        .iter()
        .position(|a| *a == flag)
        .unwrap_or_else(|| panic!("ExecStart has no {flag}"));
    argv.get(i + 1).expect("flag value")
}

fn systemd_analyze(args: &[&str], dir: &Path) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): run .ci/install-deps (Debian package systemd)"
            )
        })
}

/// A copy of the unit named grace.service whose binary is the one just built.
fn unit_copy() -> tempfile::TempDir {
    assert!(UNIT.contains(INSTALLED), "the unit runs {INSTALLED}");
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        d.path().join("grace.service"),
        UNIT.replace(INSTALLED, GRACE),
    )
    .expect("write unit");
    d
}

#[test]
fn verify_finds_nothing_and_security_rates_it_2_5_or_lower() {
    let d = unit_copy();
    let out = systemd_analyze(&["verify", "grace.service"], d.path());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "verify failed: {said}");
    assert_eq!(said.trim(), "", "verify has something to say");

    let out = systemd_analyze(
        &[
            "security",
            "--offline=yes",
            "--threshold=25",
            "grace.service",
        ],
        d.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for grace.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in: {text}"));
    assert!(exposure <= 2.5, "exposure {exposure}:\n{text}");
    assert!(
        out.status.success(),
        "over the threshold: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_unit_declares_what_a_deployment_needs() {
    assert_eq!(value("Type"), "notify");
    assert_eq!(value("NotifyAccess"), "main");
    assert!(
        value("RestartPreventExitStatus")
            .split_whitespace()
            .any(|s| s == "2"),
        "a bad config (exit 2) must not be restarted"
    );
    assert_eq!(value("Delegate"), "yes", "exec kernels use cgroups");
    assert_eq!(value("ProtectSystem"), "strict");
    assert_eq!(value("User"), "grace");
    // The config is where serve may write it back (restore of a drifted config), and
    // config_drift's relative paths name it: the working directory is its directory.
    let config = Path::new(exec_arg("--config"));
    let config_dir = config.parent().expect("config dir");
    assert!(
        values("ReadWritePaths")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .any(|p| config_dir.starts_with(p)),
        "{} is not writable",
        config_dir.display()
    );
    assert_eq!(Path::new(value("WorkingDirectory")), config_dir);
    // The state directory is the one systemd creates and owns for the unit.
    assert_eq!(
        Path::new(exec_arg("--state-dir")),
        Path::new("/var/lib").join(value("StateDirectory"))
    );
    assert_eq!(exec_start().first(), Some(&INSTALLED));
    assert!(exec_start().contains(&"watch"));
}

/// Maps the unit's absolute paths into `root`.
fn relocate(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

#[test]
fn exec_start_runs_healthy_on_the_config_grace_init_writes() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = relocate(root.path(), exec_arg("--config"));
    let state = relocate(root.path(), exec_arg("--state-dir"));
    let workdir = relocate(root.path(), value("WorkingDirectory"));
    let config_dir = config.parent().expect("config dir").to_path_buf();
    std::fs::create_dir_all(&config_dir).expect("config dir");
    std::fs::create_dir_all(&state).expect("state dir");

    // The install steps: `grace init /etc/grace`, then `grace --config ... check`.
    grace_ok(&[Path::new("init"), &config_dir]);
    assert!(config.is_file(), "grace init wrote no {}", config.display());
    grace_ok(&[Path::new("--config"), &config, Path::new("check")]);

    // ExecStart, its paths moved under the temporary root and a free port.
    let argv: Vec<String> = exec_start()[1..]
        .iter()
        .map(|a| match *a {
            "8000" => "0".to_owned(),
            a if a.starts_with('/') => relocate(root.path(), a).display().to_string(),
            a => a.to_owned(),
        })
        .collect();
    let sock_path = root.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut watch = Running {
        child: Command::new(GRACE)
            .args(&argv)
            .current_dir(&workdir)
            .env("NOTIFY_SOCKET", &sock_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ExecStart"),
        state: state.clone(),
    };
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 512];
    while !got.iter().any(|m| m == "READY=1") && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        watch.assert_alive("the watchdog");
    }
    assert!(got.iter().any(|m| m == "READY=1"), "never ready: {got:?}");
    let status = status(&config, &state);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("health:       healthy"),
        "{status:?}"
    );

    // systemctl stop: SIGTERM to the watchdog, which stops serve and exits 0.
    let exit = watch.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert!(exit.success(), "{exit}");
}

#[test]
fn a_missing_config_exits_2_which_the_unit_does_not_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let out = Command::new(GRACE)
        .arg("--config")
        .arg(root.path().join("grace.toml"))
        .arg("--state-dir")
        .arg(&state)
        .args(["watch", "--port", "0"])
        .output()
        .expect("grace watch");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--config"),
        "{out:?}"
    );
    assert!(values("RestartPreventExitStatus")
        .iter()
        .any(|v| v.split_whitespace().any(|s| s == "2")));
}
