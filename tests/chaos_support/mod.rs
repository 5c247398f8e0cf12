//! Shared helpers of the `chaos_*` end-to-end tests: a real `grace serve` child on a
//! temporary state directory with the chaos endpoints enabled, and the `grace` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The grace binary under test.
pub fn grace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_grace"))
}

/// Polls `cond` until it holds or `within` passes.
pub fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `grace serve --port 0` child; killed on drop.
pub struct Serve {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub port: u16,
}

impl Serve {
    /// Starts serve with the default config plus `[chaos] enabled = true`.
    pub fn start() -> Serve {
        let dir = tempfile::tempdir().expect("tmp");
        let config = grace::config::DEFAULT_TOML.replace("enabled = false", "enabled = true");
        std::fs::write(dir.path().join("grace.toml"), config).expect("config");
        let child = grace()
            .current_dir(dir.path())
            .args([
                "--config",
                "grace.toml",
                "--state-dir",
                "state",
                "serve",
                "--port",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        let mut s = Serve {
            dir,
            child,
            port: 0,
        };
        let serve_json = s.state().join("serve.json");
        wait_for(Duration::from_secs(20), "serve.json", || {
            let port = std::fs::read(&serve_json)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["port"].as_u64());
            if let Some(p) = port {
                s.port = p as u16;
            }
            port.is_some() && s.state().join("token").is_file()
        });
        s
    }

    /// The state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the serve process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a scenario file into `dir`.
pub fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).expect("scenario");
    p
}

/// Runs `grace chaos run` against `serve` with `extra` arguments.
pub fn run_against(serve: &Serve, scenario: &Path, report: &Path) -> Output {
    grace()
        .args(["--state-dir"])
        .arg(serve.state())
        .args(["chaos", "run"])
        .arg(scenario)
        .args(["--target", &serve.url(), "--report"])
        .arg(report)
        .stdin(Stdio::null())
        .output()
        .expect("grace chaos run")
}

/// The report of a run.
pub fn report(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join("report.json")).expect("report.json");
    serde_json::from_slice(&bytes).expect("report JSON")
}

/// A finished `grace chaos run ... --spawn --report DIR`.
pub struct SpawnedRun {
    /// The harness process's pid (its instances' directories are named after it).
    pub harness: u32,
    /// Its exit status and output.
    pub output: Output,
    /// Its stdout, as text.
    pub stdout: String,
    /// `report.json`, parsed.
    pub report: serde_json::Value,
    /// The report directory.
    pub dir: tempfile::TempDir,
}

/// Runs `grace chaos run SCENARIOS --spawn --report DIR`, asserts it exited 0, and
/// reads its report.
pub fn run_spawned(scenarios: &[&str]) -> SpawnedRun {
    let dir = tempfile::tempdir().expect("tmp");
    let child = grace()
        .args(["chaos", "run"])
        .args(scenarios)
        .args(["--spawn", "--report"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grace chaos run");
    let harness = child.id();
    let output = child.wait_with_output().expect("finished");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("json");
    SpawnedRun {
        harness,
        output,
        stdout,
        report,
        dir,
    }
}

/// Whether a process runs (a zombie does not: it holds nothing and runs nothing).
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
                != Some(Some('Z'))
        })
        .unwrap_or(false)
}

/// The instance directories a harness with this pid left in the temporary directory.
pub fn instance_dirs(harness: u32) -> Vec<PathBuf> {
    let prefix = format!("grace-chaos-{harness}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}
