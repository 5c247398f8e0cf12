//! Shared helpers of the watchdog integration tests: a temporary instance (state
//! directory, config, marked processes), the `grace` binary, polling, and a fake serve
//! (this test binary re-executed) that writes `serve.json` and answers `GET /health`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use grace::state::{ServeInfo, StatePaths};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Environment variable marking every process a test starts (inherited by the
/// watchdog, serve and their descendants), so the guard can kill them all.
pub const MARK: &str = "GRACE_TEST_MARK";
/// Set for the fake serve: the state directory to write serve.json into.
pub const FAKE_SERVE: &str = "GRACE_TEST_FAKE_SERVE";

/// A state directory, a config file and every process started for them. Dropping it
/// kills them all, even when the test failed.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub paths: StatePaths,
    pub config: PathBuf,
    mark: String,
}

impl Instance {
    /// An instance whose grace.toml has `[watchdog]` lines `watchdog` (with `{dir}`
    /// replaced by the instance's directory).
    pub fn new(watchdog: &str) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let text = format!(
            "[watchdog]\n{}\n",
            watchdog.replace("{dir}", &root.display().to_string())
        );
        let config = root.join("grace.toml");
        std::fs::write(&config, text).expect("config");
        let sleep = root.join("sleep");
        std::os::unix::fs::symlink(which("sleep"), &sleep).expect("symlink sleep");
        Instance {
            paths: StatePaths::new(root.join("state")),
            config,
            mark: root.display().to_string(),
            dir,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `grace --state-dir ... --config ... <args>`, marked.
    pub fn grace(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_grace"));
        c.arg("--state-dir")
            .arg(self.paths.root())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env(MARK, &self.mark)
            .env(FAKE_SERVE, self.paths.root())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        c
    }

    /// Runs a grace command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.grace(args).output().expect("run grace")
    }

    /// Starts `grace watch` in the foreground (as a child of the test).
    pub fn watch(&self) -> Proc {
        self.watch_with(&[])
    }

    /// Starts `grace watch <args>` in the foreground, output discarded.
    pub fn watch_with(&self, args: &[&str]) -> Proc {
        let mut all = vec!["watch"];
        all.extend_from_slice(args);
        Proc(
            self.grace(&all)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn grace watch"),
        )
    }

    /// `serve.json` of this instance, when there is one.
    pub fn serve_info(&self) -> Option<ServeInfo> {
        ServeInfo::read(&self.paths).ok().flatten()
    }

    /// Live processes carrying this instance's mark.
    pub fn procs(&self) -> Vec<(u32, Vec<String>)> {
        let want = format!("{MARK}={}", self.mark).into_bytes();
        let me = std::process::id();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").expect("proc").flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me || !alive(pid) {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if env.split(|b| *b == 0).any(|kv| kv == want.as_slice()) {
                out.push((pid, cmdline(pid)));
            }
        }
        out
    }

    /// Live processes started as `<dir>/sleep <arg>`.
    pub fn sleepers(&self, arg: &str) -> Vec<u32> {
        let prog = self.root().join("sleep").display().to_string();
        self.procs()
            .into_iter()
            .filter(|(_, argv)| {
                argv.first() == Some(&prog) && argv.get(1).map(String::as_str) == Some(arg)
            })
            .map(|(p, _)| p)
            .collect()
    }

    /// Pids appended, one a line, to `<dir>/starts` by the supervised commands.
    pub fn starts(&self) -> Vec<u32> {
        std::fs::read_to_string(self.root().join("starts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The records of watchdog.log.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.paths.watchdog_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The records of watchdog.log whose message is `event`.
    pub fn events_named(&self, event: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["message"] == event)
            .collect()
    }

    /// The alert files of a severity.
    pub fn alerts(&self, severity: &str) -> Vec<PathBuf> {
        std::fs::read_dir(self.paths.alerts_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&format!("{severity}_")))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A child process of the test, SIGKILLed and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.procs();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for (pid, _) in left {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
                // Reap our own children among them.
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(pid as i32),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn which(prog: &str) -> PathBuf {
    for d in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(d).join(prog);
        if p.exists() {
            return p;
        }
    }
    panic!("{prog} not found")
}

pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|c| c != 'Z' && c != 'X')
}

/// `GET path` on the serve of `info`, answered within a second, or None.
pub fn get(info: &ServeInfo, path: &str) -> Option<grace::alerts::http::HttpAnswer> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(grace::alerts::http::get(
        info.health_addr(),
        path,
        Duration::from_secs(1),
    ))
    .ok()
}

/// Whether the serve of `info` answers `GET /health` with 200 within a second.
pub fn healthy(info: &ServeInfo) -> bool {
    get(info, "/health").is_some_and(|a| a.status == 200)
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("signal");
}

/// The `[watchdog] command` that runs this test binary as a fake serve.
pub fn fake_serve_command(test_name: &str, dir: &Path) -> String {
    let exe = std::env::current_exe().expect("exe");
    format!(
        "command = [{:?}, \"--exact\", {:?}, \"--nocapture\", \"--test-threads=1\", {:?}]",
        exe.display().to_string(),
        test_name,
        dir.display().to_string()
    )
}

/// The fake serve: binds a free loopback port, writes serve.json, appends its pid to
/// `<state>/../starts`, answers every request `200 {"status":"healthy"}` until killed
/// (`"degraded"` while a file `<state>/../degraded` exists).
/// Runs only when [`FAKE_SERVE`] is set; returns at once otherwise.
pub fn fake_serve_main() -> bool {
    let Some(state) = std::env::var_os(FAKE_SERVE) else {
        return false;
    };
    if std::env::var_os("GRACE_SUPERVISED_BY").is_none() {
        return false;
    }
    let paths = StatePaths::new(PathBuf::from(state));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    ServeInfo::for_this_process(&paths, "127.0.0.1", port)
        .write(&paths)
        .expect("serve.json");
    let starts = paths.root().parent().expect("parent").join("starts");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(starts)
        .expect("starts");
    writeln!(f, "{}", std::process::id()).expect("write starts");
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let degraded = paths
            .root()
            .parent()
            .is_some_and(|d| d.join("degraded").exists());
        let body = if degraded {
            "{\"status\":\"degraded\"}"
        } else {
            "{\"status\":\"healthy\"}"
        };
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    true
}
