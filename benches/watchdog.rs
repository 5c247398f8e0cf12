//! Watchdog recovery benchmark: `kill -9` of serve until a new serve is exec'd and until
//! `GET /health` answers 200 again, against a same-run baseline of a shell loop
//! (`while :; do grace serve ...; done`) that is the floor of re-exec; and the
//! watchdog's own idle CPU and RSS.
//!
//! Run with: cargo bench --bench watchdog [-- TRIALS]
//!
//! Every process it starts is ended when it finishes or fails ([`Guard`]): nothing is
//! left running, the shell loop's serve included.
//!
//! One run on the 2-core development machine (under load from other builds), 50 trials:
//! kill -> new serve exec'd p50 5.4 ms / p99 46.3 ms (shell loop p50 6.8 ms); kill ->
//! `/health` 200 p50 18.4 ms / p99 88.1 ms (shell loop p50 19.3 ms); watchdog idle over
//! 10 s: 0.000% CPU, 9.3 MiB RSS.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grace::state::{ServeInfo, StatePaths};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const GRACE: &str = env!("CARGO_BIN_EXE_grace");

/// Marks every process the bench starts (inherited by serve and its kernels), so the
/// guard can find and end all of them.
const MARK: &str = "GRACE_BENCH_MARK";

/// A process the bench started, in a process group of its own, with everything it
/// started. Dropping it (also when a trial panics) sends SIGTERM to its group and waits
/// for it, then SIGKILLs every process left that carries this run's mark, wherever it
/// was re-parented: the shell loop's serve, the watchdog's serve.
struct Guard {
    child: Child,
    mark: String,
}

impl Guard {
    fn spawn(mut cmd: Command, mark: &Path) -> Guard {
        use std::os::unix::process::CommandExt;
        let mark = mark.display().to_string();
        let child = cmd.env(MARK, &mark).process_group(0).spawn().unwrap();
        Guard { child, mark }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Live processes carrying this guard's mark.
    fn marked(&self) -> Vec<i32> {
        let want = format!("{MARK}={}", self.mark).into_bytes();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_slice()))
            })
            .collect()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.marked();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

fn is_serve(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).nth(1) == Some(b"serve"))
        .unwrap_or(false)
}

fn healthy(info: &ServeInfo) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&info.health_addr(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Waits for `parent` to have a serve child other than `old`; then for it to be healthy.
/// Returns (exec'd, healthy) durations since `t0`.
fn measure(parent: u32, old: u32, paths: &StatePaths, t0: Instant) -> (Duration, Duration) {
    let deadline = t0 + Duration::from_secs(10);
    let new = loop {
        if let Some(p) = children(parent)
            .into_iter()
            .find(|p| *p != old && is_serve(*p))
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no new serve");
        std::hint::spin_loop();
    };
    let exec = t0.elapsed();
    loop {
        if let Ok(Some(info)) = ServeInfo::read(paths) {
            if info.pid == new && healthy(&info) {
                return (exec, t0.elapsed());
            }
        }
        assert!(Instant::now() < deadline, "new serve never healthy");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn wait_serve(paths: &StatePaths, not: u32) -> ServeInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(info)) = ServeInfo::read(paths) {
            if info.pid != not && healthy(&info) {
                return info;
            }
        }
        assert!(Instant::now() < deadline, "serve never healthy");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_trials(
    parent: u32,
    paths: &StatePaths,
    trials: usize,
    settle: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut exec, mut health) = (Vec::new(), Vec::new());
    let mut info = wait_serve(paths, 0);
    for _ in 0..trials {
        std::thread::sleep(settle);
        let t0 = Instant::now();
        kill(Pid::from_raw(info.pid as i32), Signal::SIGKILL).unwrap();
        let (e, h) = measure(parent, info.pid, paths, t0);
        exec.push(e);
        health.push(h);
        info = wait_serve(paths, info.pid);
    }
    (exec, health)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn instance(dir: &Path, watchdog: &str) -> (StatePaths, PathBuf) {
    let config = dir.join("grace.toml");
    std::fs::write(&config, format!("[watchdog]\n{watchdog}\n")).unwrap();
    (StatePaths::new(dir.join("state")), config)
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let trials: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    let quiet = || Stdio::null();

    // Baseline: a shell loop re-executing serve, the floor of re-exec.
    let base_dir = tempfile::tempdir().unwrap();
    let (bpaths, bconfig) = instance(base_dir.path(), "");
    let script = format!(
        "while :; do {GRACE} serve --state-dir {} --config {} --port 0; done",
        bpaths.root().display(),
        bconfig.display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stderr(quiet());
    let sh = Guard::spawn(cmd, base_dir.path());
    let (mut b_exec, mut b_health) =
        run_trials(sh.id(), &bpaths, trials, Duration::from_millis(20));
    drop(sh);

    // The watchdog, with restarts kept immediate (no backoff) for every trial.
    let wd_dir = tempfile::tempdir().unwrap();
    let (wpaths, wconfig) = instance(
        wd_dir.path(),
        "check_interval = \"5s\"\nmin_uptime = \"10ms\"\nbackoff_initial = \"0s\"\nmax_consecutive_failures = 1000000",
    );
    let mut cmd = Command::new(GRACE);
    cmd.arg("--state-dir")
        .arg(wpaths.root())
        .arg("--config")
        .arg(&wconfig)
        .args(["watch", "--port", "0"])
        .stderr(quiet());
    let wd = Guard::spawn(cmd, wd_dir.path());
    let (mut w_exec, mut w_health) =
        run_trials(wd.id(), &wpaths, trials, Duration::from_millis(20));

    // Idle: the watchdog with a healthy serve, probing every 5 s, for 10 s.
    let idle = Duration::from_secs(10);
    let pid = wd.id();
    let t0 = cpu_ticks(pid);
    std::thread::sleep(idle);
    let ticks = cpu_ticks(pid) - t0;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let cpu_pct = ticks as f64 / hz / idle.as_secs_f64() * 100.0;
    let rss = rss_kib(pid);
    drop(wd);

    println!("watchdog recovery after kill -9 of serve, {trials} trials each (ms)");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "measure", "p50", "p99", "baseline", "ratio p50"
    );
    let row = |name: &str, w: &mut Vec<Duration>, b: &mut Vec<Duration>| {
        let (wp50, wp99, bp50) = (pct(w, 0.5), pct(w, 0.99), pct(b, 0.5));
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9.2}",
            name,
            ms(wp50),
            ms(wp99),
            ms(bp50),
            wp50.as_secs_f64() / bp50.as_secs_f64()
        );
        (wp50, bp50)
    };
    let (e50, be50) = row("kill -> new serve exec'd", &mut w_exec, &mut b_exec);
    let (h50, _) = row("kill -> GET /health 200", &mut w_health, &mut b_health);
    println!(
        "baseline p99: exec {} ms, healthy {} ms",
        ms(pct(&mut b_exec, 0.99)),
        ms(pct(&mut b_health, 0.99))
    );
    println!();
    println!(
        "watchdog idle over {}s: cpu {:.3}%  rss {:.1} MiB",
        idle.as_secs(),
        cpu_pct,
        rss as f64 / 1024.0
    );
    println!();
    let gap = e50.as_secs_f64() * 1000.0 - be50.as_secs_f64() * 1000.0;
    println!(
        "targets: re-exec within 0.5 ms of the shell loop: {:+.3} ms ({})",
        gap,
        if gap <= 0.5 { "met" } else { "MISSED" }
    );
    println!(
        "         healthy again under 50 ms: {} ms ({})",
        ms(h50),
        if h50 < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "         idle cpu < 0.1%: {:.3}% ({})",
        cpu_pct,
        if cpu_pct < 0.1 { "met" } else { "MISSED" }
    );
    println!(
        "         idle rss < 15 MiB: {:.1} MiB ({})",
        rss as f64 / 1024.0,
        if rss < 15 * 1024 { "met" } else { "MISSED" }
    );
}
