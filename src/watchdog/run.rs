//! `grace watch` as a library function: take the watchdog lock, write `watchdog.pid`,
//! become a child subreaper, map signals to the actor, talk to systemd, run the actor.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use super::actor::{self, ActorOptions};
use super::events::{EventLog, Level};
use super::process::CapturedOutput;
use super::sd_notify::{self, SdNotify};
use super::{WatchdogConfig, WatchdogError, DETACH_ENV};
use crate::alerts::AlertsConfig;
use crate::state::{atomic_write, StateLock, StatePaths};
use crate::telemetry::StderrOut;

/// What `grace watch` runs with.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The state directory.
    pub paths: StatePaths,
    /// `[watchdog]`.
    pub config: WatchdogConfig,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
    /// The command to supervise: [`serve_argv`] or `[watchdog] command`.
    pub argv: Vec<String>,
    /// `[logging]`: rotation of `watchdog.log` and of serve's captured output, stderr.
    pub logging: crate::telemetry::LoggingConfig,
}

/// The argv that runs `grace serve` for this state directory: this executable with
/// `serve --state-dir DIR [--config FILE] [--port N] [--bind ADDR]`, paths made absolute
/// so the child does not depend on the working directory.
pub fn serve_argv(
    paths: &StatePaths,
    config_file: Option<&Path>,
    port: Option<u16>,
    bind: Option<&str>,
) -> std::io::Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        "serve".to_owned(),
        "--state-dir".to_owned(),
        abs(paths.root()).to_string_lossy().into_owned(),
    ];
    if let Some(c) = config_file {
        argv.push("--config".to_owned());
        argv.push(abs(c).to_string_lossy().into_owned());
    }
    if let Some(p) = port {
        argv.push("--port".to_owned());
        argv.push(p.to_string());
    }
    if let Some(b) = bind {
        argv.push("--bind".to_owned());
        argv.push(b.to_owned());
    }
    Ok(argv)
}

/// Whether this process has a controlling terminal now.
fn has_terminal() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}

/// Runs the watchdog until SIGTERM or SIGINT (serve is then stopped gracefully and the
/// result is `Ok`). Signals: SIGUSR1 re-reads the kill switch, SIGHUP restarts serve
/// (`grace restart`), except when it comes from the watchdog's terminal going away:
/// then the watchdog stops echoing to it and goes on supervising. SIGPIPE is caught, so
/// a closed stdout or stderr only makes writes fail (dropped and counted, see
/// [`EventLog`]). Refuses to run when another watchdog holds `watchdog.lock`.
pub async fn run(opts: WatchOptions) -> Result<(), WatchdogError> {
    let detached = std::env::var_os(DETACH_ENV).is_some();
    if detached {
        // Started by `grace start`: leave its session so its terminal going away does
        // not take us with it. Fails only if we already lead a group, which is fine.
        let _ = nix::unistd::setsid();
    }
    let setup = |what| move |source| WatchdogError::Setup { what, source };
    // Handlers first: a CLI that finds our lock may signal us at once, and SIGUSR1's
    // default action would kill us.
    let mut term = signal(SignalKind::terminate()).map_err(setup("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(setup("SIGINT handler"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(setup("SIGUSR1 handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(setup("SIGHUP handler"))?;
    let mut pipe = signal(SignalKind::pipe()).map_err(setup("SIGPIPE handler"))?;
    let mut terminal = !detached && has_terminal();
    opts.paths
        .create()
        .map_err(|e| crate::state::StateError::io(opts.paths.root(), "create", e))?;
    let _lock = StateLock::acquire(&opts.paths.watchdog_lock(), "a watchdog")?;
    let pid_file = opts.paths.watchdog_pid();
    atomic_write(&pid_file, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| crate::state::StateError::io(&pid_file, "write", e))?;
    let rotation = opts.logging.rotation();
    let echo = if detached {
        StderrOut::off()
    } else {
        StderrOut::resolve(opts.logging.stderr)
    };
    let log = Arc::new(EventLog::open(&opts.paths.watchdog_log(), rotation)?.with_echo(echo));
    let subreaper = super::process::set_subreaper();
    log.record(
        Level::Info,
        "watchdog.started",
        json!({"state_dir": opts.paths.root(), "argv": opts.argv,
               "subreaper": subreaper.is_ok(),
               "check_interval_ms": opts.config.check_interval.as_millis() as u64,
               "min_uptime_ms": opts.config.min_uptime.as_millis() as u64}),
    );
    let (handle, mut task) = actor::spawn(
        ActorOptions {
            paths: opts.paths.clone(),
            config: opts.config.clone(),
            alerts: opts.alerts.clone(),
            argv: opts.argv.clone(),
            // In the background nobody reads stderr: serve keeps its records in
            // logs/grace.jsonl only, and what else it prints goes to logs/serve.out.
            child_output: detached.then(|| CapturedOutput {
                path: opts.paths.serve_output(),
                rotation,
            }),
        },
        log.clone(),
        SdNotify::from_env(),
    );
    let pinger = sd_notify::watchdog_interval().and_then(|every| {
        let n = SdNotify::from_env()?;
        let h = handle.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                // Ping only when the actor answers: systemd then restarts a stuck watchdog.
                if let Ok(Some(_)) = tokio::time::timeout(every, h.snapshot()).await {
                    n.notify("WATCHDOG=1");
                }
            }
        }))
    });
    let mut stopped_by = None;
    loop {
        tokio::select! {
            _ = &mut task => break,
            _ = term.recv() => { stopped_by = Some("SIGTERM"); break }
            _ = int.recv() => { stopped_by = Some("SIGINT"); break }
            _ = usr1.recv() => handle.reload().await,
            _ = pipe.recv() => {}
            _ = hup.recv() => {
                if terminal && !has_terminal() {
                    // The terminal hung up: nobody reads our echo any more, and nobody
                    // asked for a restart. Keep supervising.
                    terminal = false;
                    log.set_echo(false);
                    log.record(
                        Level::Warn,
                        "watchdog.terminal_lost",
                        json!({"effect": "echo to stderr off; still supervising",
                               "dropped_stderr_writes": crate::telemetry::dropped_stderr_writes()}),
                    );
                    continue;
                }
                let h = handle.clone();
                tokio::spawn(async move { h.restart_serve().await });
            }
        }
    }
    if let Some(sig) = stopped_by {
        log.record(Level::Info, "watchdog.stopping", json!({"signal": sig}));
        handle.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    if let Some(p) = pinger {
        p.abort();
    }
    if std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(std::process::id())
    {
        let _ = std::fs::remove_file(&pid_file);
    }
    log.record(
        Level::Info,
        "watchdog.stopped",
        json!({"dropped_stderr_writes": crate::telemetry::dropped_stderr_writes()}),
    );
    Ok(())
}
