//! The control commands: `grace watch`, `start`, `restart`, `status`, `logs` (and `stop`,
//! in `stop.rs`).
//!
//! They talk to a running watchdog through its lock (which names its pid), signals
//! (SIGUSR1: re-read the kill switch; SIGHUP: restart serve; SIGTERM: stop) and the
//! state directory's files; they never need the watchdog to answer a request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::ServeArgs;
use crate::config::Config;
use crate::state::{lock_holder, KillSwitch, ServeInfo, StatePaths};
use crate::watchdog::log_filter::{parse_since, LogFilter};
use crate::watchdog::{self, WatchdogError};

/// What every control command needs.
#[derive(Debug, Clone)]
pub struct ControlContext {
    /// The state directory.
    pub paths: StatePaths,
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The configuration file given on the command line, passed on to serve.
    pub config_file: Option<PathBuf>,
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The argv the watchdog supervises: `[watchdog] command`, else `grace serve` with the
/// serve options.
pub fn supervised_argv(ctx: &ControlContext, serve: &ServeArgs) -> anyhow::Result<Vec<String>> {
    if !ctx.config.watchdog.command.is_empty() {
        return Ok(ctx.config.watchdog.command.clone());
    }
    let mut argv = watchdog::serve_argv(
        &ctx.paths,
        ctx.config_file.as_deref(),
        serve.port,
        serve.bind.as_deref(),
    )
    .context("cannot find the grace executable to run serve")?;
    if super::chaos_requested(serve.chaos)? {
        argv.push("--chaos".to_owned());
    }
    Ok(argv)
}

/// A serve that runs for this state directory without a watchdog (`grace serve` in a
/// terminal): it holds `serve.lock` and carries no watchdog's mark. A watchdog started
/// beside it would crash-loop on that lock, so `grace start` and `grace watch` refuse.
pub fn foreground_serve(paths: &StatePaths) -> Option<u32> {
    let pid = lock_holder(&paths.serve_lock())?;
    if watchdog::supervised_processes(paths).contains(&pid) {
        return None;
    }
    Some(pid)
}

fn refuse_beside_foreground_serve(paths: &StatePaths, what: &str) -> anyhow::Result<()> {
    let Some(pid) = foreground_serve(paths) else {
        return Ok(());
    };
    Err(WatchdogError::Refused(format!(
        "a grace serve (pid {pid}) already runs for {} without a watchdog, and holds its \
         lock; {what} would start a watchdog whose serve cannot take it. Stop that serve \
         first (Ctrl-C in its terminal, or `grace stop`), or give this one its own \
         --state-dir",
        paths.root().display()
    ))
    .into())
}

/// `grace watch`: runs the watchdog in the foreground until SIGTERM/SIGINT.
pub fn watch(ctx: &ControlContext, serve: &ServeArgs) -> anyhow::Result<()> {
    refuse_beside_foreground_serve(&ctx.paths, "`grace watch`")?;
    let opts = watchdog::WatchOptions {
        paths: ctx.paths.clone(),
        config: ctx.config.watchdog.clone(),
        alerts: ctx.config.alerts.clone(),
        argv: supervised_argv(ctx, serve)?,
        logging: ctx.config.logging.clone(),
    };
    runtime()?.block_on(watchdog::run(opts))?;
    Ok(())
}

/// The pid of the running watchdog of this state directory (the holder of its lock).
pub fn watchdog_pid(paths: &StatePaths) -> Option<u32> {
    lock_holder(&paths.watchdog_lock())
}

/// The pid of the running serve (or configured command) of this state directory: the
/// holder of `serve.lock`, else the watchdog's recorded child if it still runs.
pub fn serve_pid(paths: &StatePaths) -> Option<u32> {
    if let Some(pid) = lock_holder(&paths.serve_lock()) {
        return Some(pid);
    }
    let recorded = KillSwitch::read(paths)
        .ok()
        .and_then(|k| k.child)
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{}/stat", c.pid))
                .ok()
                .and_then(|st| {
                    st.rsplit_once(')')
                        .map(|(_, r)| !r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        });
    if let Some(c) = recorded {
        return Some(c.pid);
    }
    // A watchdog killed before it recorded its child: find the tree by its mark.
    watchdog::supervised_processes(paths).into_iter().min()
}

pub(super) fn signal(pid: u32, sig: Signal) -> anyhow::Result<()> {
    kill(Pid::from_raw(pid as i32), sig)
        .with_context(|| format!("cannot send {sig} to the watchdog (pid {pid})"))
}

pub(super) fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a watchdog in the background: its own session, stdin closed, stdout and
/// stderr appended to `logs/watchdog.out` (its records go to `watchdog.log` itself;
/// this catches only what it prints outside them, such as a panic message).
fn spawn_watchdog(ctx: &ControlContext, serve: &ServeArgs) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the grace executable")?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    ctx.paths
        .create()
        .context("cannot create the state directory")?;
    let log = crate::telemetry::RotatingFile::handoff(
        &ctx.paths.watchdog_output(),
        ctx.config.logging.rotation(),
    )
    .context("cannot open logs/watchdog.out")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir").arg(abs(ctx.paths.root()));
    if let Some(c) = &ctx.config_file {
        cmd.arg("--config").arg(abs(c));
    }
    cmd.arg("watch");
    if super::chaos_requested(serve.chaos)? {
        cmd.arg("--chaos");
    }
    if let Some(p) = serve.port {
        cmd.arg("--port").arg(p.to_string());
    }
    if let Some(b) = &serve.bind {
        cmd.arg("--bind").arg(b);
    }
    cmd.env(watchdog::DETACH_ENV, "1")
        .env_remove(watchdog::SUPERVISED_ENV)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("cannot share logs/watchdog.out")?)
        .stderr(log);
    cmd.spawn().context("cannot start the watchdog")
}

/// Whether `pid` descends from `ancestor` (a configured command may run serve under a
/// wrapper, so serve need not be the watchdog's own child).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        match parent_of(p) {
            Some(pp) if pp == ancestor => return true,
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// The parent of `pid`, from `/proc`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits until the serve that watchdog `watchdog` started (its descendant, other than
/// `not_pid`) runs and is healthy: it answers `GET /health` with 200 at the address its
/// own `serve.json` names (when health is not probed, until it runs). A leftover serve
/// that the watchdog is about to replace is never taken for it.
fn wait_healthy(
    ctx: &ControlContext,
    not_pid: Option<u32>,
    watchdog: u32,
    mut spawned: Option<std::process::Child>,
) -> anyhow::Result<u32> {
    let cfg = &ctx.config.watchdog;
    // A new watchdog may first have to stop a leftover serve.
    let wait = cfg.ready_timeout + super::stop::stop_wait(ctx) + Duration::from_secs(5);
    let rt = runtime()?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Some(c) = spawned.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                anyhow::bail!(
                    "the watchdog exited at once ({st}); see {} and {}",
                    ctx.paths.watchdog_output().display(),
                    ctx.paths.watchdog_log().display()
                );
            }
        }
        let ours =
            serve_pid(&ctx.paths).filter(|p| Some(*p) != not_pid && descends_from(*p, watchdog));
        if let Some(pid) = ours {
            if !cfg.probes_health() {
                return Ok(pid);
            }
            let recorded = ServeInfo::read(&ctx.paths)
                .ok()
                .flatten()
                .is_some_and(|i| i.pid == pid);
            let addr = crate::watchdog::health_addr(cfg, &ctx.paths, pid).filter(|_| recorded);
            if let Some(addr) = addr {
                let ok = rt.block_on(crate::alerts::http::get(
                    addr,
                    "/health",
                    Duration::from_secs(1),
                ));
                if ok.is_ok_and(|a| a.status == 200) {
                    return Ok(pid);
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(WatchdogError::Timeout {
                what: "serve becoming healthy".to_owned(),
                waited: wait,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `grace start`: clears the kill switch; starts a background watchdog if none runs;
/// returns once the serve this watchdog started is healthy.
pub fn start(ctx: &ControlContext, serve: &ServeArgs) -> anyhow::Result<()> {
    if watchdog_pid(&ctx.paths).is_none() {
        refuse_beside_foreground_serve(&ctx.paths, "`grace start`")?;
    }
    KillSwitch::set_manual_shutdown(&ctx.paths, false, "grace start")?;
    let (watchdog, spawned) = match watchdog_pid(&ctx.paths) {
        Some(w) => {
            signal(w, Signal::SIGUSR1)?;
            if serve.port.is_some() || serve.bind.is_some() || serve.chaos {
                println!(
                    "note: the watchdog (pid {w}) already runs and keeps its options; \
                     `grace stop --all` first to start one with these"
                );
            }
            (w, None)
        }
        None => {
            let c = spawn_watchdog(ctx, serve)?;
            (c.id(), Some(c))
        }
    };
    let pid = wait_healthy(ctx, None, watchdog, spawned)?;
    println!("serve running (pid {pid}), healthy");
    Ok(())
}

/// `grace restart`: restarts serve without touching the kill switch; returns once the
/// new serve is healthy.
pub fn restart(ctx: &ControlContext, serve: &ServeArgs) -> anyhow::Result<()> {
    if KillSwitch::read(&ctx.paths)?.manual_shutdown {
        return Err(WatchdogError::Refused(
            "serve is stopped by the kill switch (grace stop); use `grace start` to start it"
                .to_owned(),
        )
        .into());
    }
    let old = serve_pid(&ctx.paths);
    let (watchdog, spawned) = match watchdog_pid(&ctx.paths) {
        Some(w) => {
            signal(w, Signal::SIGHUP)?;
            (w, None)
        }
        None => {
            if let Some(pid) = old {
                super::stop::stop_without_watchdog(ctx, pid)?;
            }
            let c = spawn_watchdog(ctx, serve)?;
            (c.id(), Some(c))
        }
    };
    let pid = wait_healthy(ctx, old, watchdog, spawned)?;
    println!("serve restarted (pid {pid}), healthy");
    Ok(())
}

/// `grace status [--json]`: kill switch, watchdog and serve (pids, uptime, CPU, memory),
/// health, kernels and open incidents.
pub fn status(ctx: &ControlContext, json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let report = runtime()?.block_on(watchdog::status::gather(
        &ctx.paths,
        Duration::from_millis(250),
    ));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", watchdog::status::render(&report));
    }
    // LSB status codes (0 healthy, 1 degraded or dead with its pid left, 3 not
    // running): the answer itself is printed, so a non-zero code is not an error.
    let code = report.exit_code();
    if code != 0 {
        std::io::stdout().flush()?;
        std::process::exit(code);
    }
    Ok(())
}

/// `grace logs [-f] [-n N] [--level L] [--source S] [--since T]`: the watchdog's and
/// serve's records merged by time, filtered.
pub fn logs(
    ctx: &ControlContext,
    follow: bool,
    lines: usize,
    filter: &LogFilter,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match watchdog::logs::print(&ctx.paths, lines, follow, filter, &mut out) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Runs the command if it is a control command.
pub fn dispatch(cli: &super::Cli) -> Option<anyhow::Result<()>> {
    use super::Command;
    let ctx = || -> anyhow::Result<ControlContext> {
        let loaded = crate::config::load(cli.config.as_deref())?;
        let config_file = loaded.source.path().map(Path::to_path_buf);
        let config = loaded.config;
        Ok(ControlContext {
            paths: StatePaths::resolve(cli.state_dir.as_deref(), config_file.as_deref()),
            config: Arc::new(config),
            config_file,
        })
    };
    let run = |f: &dyn Fn(&ControlContext) -> anyhow::Result<()>| ctx().and_then(|c| f(&c));
    Some(match &cli.command {
        Command::Watch(s) => run(&|c| watch(c, s)),
        Command::Start(s) => run(&|c| start(c, s)),
        Command::Stop { all } => run(&|c| super::stop::stop(c, *all)),
        Command::Restart => run(&|c| restart(c, &ServeArgs::default())),
        Command::Status { json } => run(&|c| status(c, *json)),
        Command::Logs {
            follow,
            lines,
            level,
            source,
            since,
        } => {
            let since = match since.as_deref().map(|s| parse_since(s, crate::time::now())) {
                Some(Err(e)) => return Some(Err(super::UsageError(e).into())),
                Some(Ok(t)) => Some(t),
                None => None,
            };
            let filter = LogFilter {
                level: *level,
                source: source.clone(),
                since,
            };
            run(&|c| logs(c, *follow, *lines, &filter))
        }
        _ => return None,
    })
}
