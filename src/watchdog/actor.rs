//! The watchdog actor: one task that owns the serve child and carries out the policy's
//! decisions. It waits at once on the child's exit, the control queue, the next health
//! probe, the stability timer and SIGCHLD (orphans to reap), so a crash is seen the
//! moment it happens.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::events::{EventLog, Level};
use super::handle::{Control, Snapshot, WatchdogHandle};
use super::policy::{
    self, ExitKind, Health, Next, Phase as PolicyPhase, RunEnd, SwitchAction, Verdict,
};
use super::sd_notify::SdNotify;
use super::{probe, process, WatchdogConfig};
use crate::alerts::{AlertsConfig, Severity};
use crate::state::{ChildRecord, KillSwitch, StatePaths};

/// What the actor needs.
#[derive(Debug, Clone)]
pub struct ActorOptions {
    /// The state directory.
    pub paths: StatePaths,
    /// `[watchdog]`.
    pub config: WatchdogConfig,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
    /// The argv of serve (or the configured command).
    pub argv: Vec<String>,
    /// Where serve's stdout and stderr go (appended); `None`: inherited.
    pub child_output: Option<std::path::PathBuf>,
}

enum Phase {
    Stopped,
    Waiting { until: Instant, paused: bool },
    Running(Box<Run>),
    Exit(Option<oneshot::Sender<()>>),
}

struct Run {
    child: Child,
    pid: u32,
    started: Instant,
    health: Health,
    stable: bool,
    is_restart: bool,
    addr: Option<SocketAddr>,
}

enum Outcome {
    Exited(Option<ExitStatus>),
    Killed(ExitKind),
    SwitchStop,
    Restart(oneshot::Sender<()>),
    Shutdown(Option<oneshot::Sender<()>>),
}

type ProbeFuture = Pin<Box<dyn Future<Output = policy::Probe> + Send>>;

/// The actor's state.
pub(crate) struct Actor {
    opts: ActorOptions,
    log: Arc<EventLog>,
    rx: mpsc::Receiver<Control>,
    failures: u32,
    manual_shutdown: bool,
    restart_count: u64,
    notify: Option<SdNotify>,
    ready_sent: bool,
    phase_name: &'static str,
    serve_pid: Option<u32>,
    serve_ready: bool,
}

/// Starts the actor on the current runtime; returns its handle and its task.
pub(crate) fn spawn(
    opts: ActorOptions,
    log: Arc<EventLog>,
    notify: Option<SdNotify>,
) -> (WatchdogHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    let actor = Actor {
        opts,
        log,
        rx,
        failures: 0,
        manual_shutdown: false,
        restart_count: 0,
        notify,
        ready_sent: false,
        phase_name: "stopped",
        serve_pid: None,
        serve_ready: false,
    };
    (WatchdogHandle { tx }, tokio::spawn(actor.run()))
}

impl Actor {
    async fn run(mut self) {
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
        let ks = self.read_switch();
        self.restart_count = ks.restart_count;
        self.replace_leftovers(&ks).await;
        let mut phase = if self.manual_shutdown {
            self.log.record(
                Level::Info,
                "serve.held",
                json!({"reason": "kill switch set (manual_shutdown); `grace start` clears it"}),
            );
            self.enter_stopped()
        } else {
            self.start(false)
        };
        loop {
            phase = match phase {
                Phase::Exit(reply) => {
                    self.phase_name = "stopped";
                    if let Some(r) = reply {
                        let _ = r.send(());
                    }
                    return;
                }
                Phase::Stopped => match self.rx.recv().await {
                    None => Phase::Exit(None),
                    Some(c) => self.idle_control(c, PolicyPhase::Stopped, Phase::Stopped),
                },
                Phase::Waiting { until, paused } => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {
                            if paused {
                                self.failures = 0;
                            }
                            self.start(true)
                        }
                        c = self.rx.recv() => match c {
                            None => Phase::Exit(None),
                            Some(c) => self.idle_control(
                                c, PolicyPhase::Waiting, Phase::Waiting { until, paused },
                            ),
                        },
                    }
                }
                Phase::Running(mut run) => {
                    let out = self.supervise(&mut run, sigchld.as_mut()).await;
                    self.after(run, out).await
                }
            };
        }
    }

    /// A control message while serve does not run.
    fn idle_control(&mut self, c: Control, now: PolicyPhase, same: Phase) -> Phase {
        match c {
            Control::Reload => {
                self.read_switch();
                match policy::on_switch(self.manual_shutdown, now) {
                    SwitchAction::StartNow => {
                        self.failures = 0;
                        self.start(false)
                    }
                    SwitchAction::Stop => self.enter_stopped(),
                    SwitchAction::Nothing => same,
                }
            }
            Control::RestartServe(reply) => {
                let _ = reply.send(());
                if self.read_switch().manual_shutdown {
                    same
                } else {
                    self.failures = 0;
                    self.start(true)
                }
            }
            Control::Shutdown(reply) => Phase::Exit(Some(reply)),
            Control::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
                same
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase_name,
            serve_pid: self.serve_pid,
            serve_ready: self.serve_ready,
            failures: self.failures,
            restart_count: self.restart_count,
            manual_shutdown: self.manual_shutdown,
        }
    }

    fn read_switch(&mut self) -> KillSwitch {
        let ks = match KillSwitch::read(&self.opts.paths) {
            Ok(ks) => ks,
            Err(e) => {
                // A switch that cannot be read keeps serve as it is: never start what an
                // operator may have stopped, never stop what may be wanted.
                self.log.record(
                    Level::Error,
                    "kill_switch.unreadable",
                    json!({"error": e.to_string()}),
                );
                return KillSwitch {
                    manual_shutdown: self.manual_shutdown,
                    ..KillSwitch::default()
                };
            }
        };
        if ks.manual_shutdown != self.manual_shutdown {
            self.log.record(
                Level::Info,
                "grace.kill_switch",
                json!({
                    "manual_shutdown": ks.manual_shutdown,
                    "changed_by": ks.switch_changed_by,
                    "changed_at": ks.switch_changed_at,
                }),
            );
        }
        self.manual_shutdown = ks.manual_shutdown;
        ks
    }

    fn sd(&mut self, state: &str) {
        if let Some(n) = &self.notify {
            if !self.ready_sent {
                n.notify("READY=1");
                self.ready_sent = true;
            }
            n.notify(state);
        }
    }

    fn enter_stopped(&mut self) -> Phase {
        self.phase_name = "stopped";
        self.serve_pid = None;
        self.serve_ready = false;
        self.sd("STATUS=serve stopped (kill switch set)");
        Phase::Stopped
    }

    fn enter_waiting(&mut self, delay: Duration, paused: bool) -> Phase {
        self.phase_name = if paused { "paused" } else { "waiting" };
        self.serve_pid = None;
        self.serve_ready = false;
        let status = format!(
            "STATUS=serve down, next start in {:.1}s{}",
            delay.as_secs_f64(),
            if paused {
                " (paused after repeated failures)"
            } else {
                ""
            }
        );
        self.sd(&status);
        Phase::Waiting {
            until: Instant::now() + delay,
            paused,
        }
    }

    /// Starts serve. A start that cannot even spawn is a failed start.
    fn start(&mut self, is_restart: bool) -> Phase {
        let started = Instant::now();
        match process::spawn(
            &self.opts.argv,
            &self.supervised_by(),
            self.opts.child_output.as_deref(),
        ) {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                if is_restart {
                    self.restart_count += 1;
                }
                let probing = self.opts.config.probes_health();
                self.phase_name = "running";
                self.serve_pid = Some(pid);
                self.serve_ready = !probing;
                self.log.record(
                    Level::Info,
                    "serve.started",
                    json!({"pid": pid, "restart": is_restart, "restart_count": self.restart_count,
                           "argv": self.opts.argv}),
                );
                let record = ChildRecord {
                    pid,
                    pgid: pid as i32,
                    start_ticks: process::stat(pid).map(|s| s.start_ticks).unwrap_or(0),
                    watchdog_pid: std::process::id(),
                    started_at: crate::time::rfc3339(crate::time::now()),
                };
                let count = self.restart_count;
                self.persist(|s| {
                    s.child = Some(record);
                    s.restart_count = s.restart_count.max(count);
                });
                if !probing {
                    self.sd(&format!("STATUS=serve running (pid {pid})"));
                }
                Phase::Running(Box::new(Run {
                    child,
                    pid,
                    started,
                    health: Health {
                        ready: !probing,
                        misses: 0,
                    },
                    stable: false,
                    is_restart,
                    addr: None,
                }))
            }
            Err(e) => {
                self.log.record(
                    Level::Error,
                    "grace.restart.failed",
                    json!({"error": e.to_string(), "argv": self.opts.argv,
                           "hint": "check [watchdog] command or that the grace binary still exists"}),
                );
                let end = RunEnd {
                    kind: ExitKind::Code(127),
                    uptime: Duration::ZERO,
                    was_ready: false,
                };
                self.decide(&end)
            }
        }
    }

    fn supervised_by(&self) -> std::path::PathBuf {
        let root = self.opts.paths.root();
        std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
    }

    fn persist(&self, f: impl FnOnce(&mut KillSwitch)) {
        if let Err(e) = KillSwitch::update(&self.opts.paths, "watchdog", f) {
            self.log.record(
                Level::Error,
                "state.write_failed",
                json!({"error": e.to_string()}),
            );
        }
    }

    /// Waits on everything at once while serve runs.
    async fn supervise(
        &mut self,
        run: &mut Run,
        mut sigchld: Option<&mut tokio::signal::unix::Signal>,
    ) -> Outcome {
        let cfg = self.opts.config.clone();
        let probing = cfg.probes_health();
        let startup_interval = cfg.check_interval.min(Duration::from_millis(50));
        let mut next_probe = Instant::now() + startup_interval;
        let mut probe_fut: Option<ProbeFuture> = None;
        let stable_at = run.started + cfg.min_uptime;
        loop {
            tokio::select! {
                biased;
                st = run.child.wait() => return Outcome::Exited(st.ok()),
                c = self.rx.recv() => match c {
                    None => return Outcome::Shutdown(None),
                    Some(Control::Reload) => {
                        self.read_switch();
                        if policy::on_switch(self.manual_shutdown, PolicyPhase::Running)
                            == SwitchAction::Stop
                        {
                            return Outcome::SwitchStop;
                        }
                    }
                    Some(Control::RestartServe(r)) => return Outcome::Restart(r),
                    Some(Control::Shutdown(r)) => return Outcome::Shutdown(Some(r)),
                    Some(Control::Snapshot(r)) => {
                        let _ = r.send(self.snapshot());
                    }
                },
                p = async {
                    match probe_fut.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if probe_fut.is_some() =>
                {
                    probe_fut = None;
                    let uptime = run.started.elapsed();
                    let (h, verdict) = policy::on_probe(&cfg, run.health, p, uptime);
                    run.health = h;
                    match verdict {
                        Verdict::Fine => {}
                        Verdict::BecameReady => self.became_ready(run),
                        Verdict::Hung => return Outcome::Killed(ExitKind::Hung),
                        Verdict::NeverReady => return Outcome::Killed(ExitKind::NeverReady),
                    }
                    let every = if run.health.ready { cfg.check_interval } else { startup_interval };
                    next_probe = Instant::now() + every;
                }
                _ = tokio::time::sleep_until(next_probe), if probing && probe_fut.is_none() => {
                    if run.addr.is_none() {
                        run.addr = probe::health_addr(&cfg, &self.opts.paths, run.pid);
                    }
                    probe_fut = Some(match run.addr {
                        Some(addr) => Box::pin(probe::probe(addr, cfg.health_timeout)),
                        None => Box::pin(async { policy::Probe::NoAnswer }),
                    });
                }
                _ = tokio::time::sleep_until(stable_at), if !run.stable => {
                    run.stable = true;
                    if run.health.ready {
                        self.mark_stable(run);
                    }
                }
                _ = async {
                    match sigchld.as_mut() {
                        Some(s) => { s.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    process::sweep_orphans(Some(run.pid), false);
                }
            }
        }
    }

    fn became_ready(&mut self, run: &mut Run) {
        self.serve_ready = true;
        let ms = run.started.elapsed().as_millis() as u64;
        let event = if run.is_restart {
            "grace.restart.success"
        } else {
            "serve.ready"
        };
        self.log.record(
            Level::Info,
            event,
            json!({"pid": run.pid, "ready_ms": ms, "addr": run.addr.map(|a| a.to_string())}),
        );
        self.sd(&format!("STATUS=serve healthy (pid {})", run.pid));
        if run.stable {
            self.mark_stable(run);
        }
    }

    fn mark_stable(&mut self, run: &Run) {
        if self.failures > 0 {
            self.log.record(
                Level::Info,
                "serve.stable",
                json!({"pid": run.pid, "failures_reset": self.failures}),
            );
        }
        self.failures = 0;
    }

    /// Carries out what follows the end of `supervise`.
    async fn after(&mut self, mut run: Box<Run>, out: Outcome) -> Phase {
        let pgid = run.pid as i32;
        let stop_timeout = self.opts.config.stop_timeout;
        let kind = match out {
            Outcome::Exited(st) => {
                // The leader is gone; nothing of its group may outlive it.
                process::signal_group(pgid, Signal::SIGKILL);
                ExitKind::from_status(
                    st.and_then(|s| s.code()),
                    st.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
                )
            }
            Outcome::Killed(kind) => {
                self.log.record(
                    Level::Warn,
                    if kind == ExitKind::Hung {
                        "serve.hung"
                    } else {
                        "serve.never_ready"
                    },
                    json!({"pid": run.pid, "uptime_s": run.started.elapsed().as_secs_f64(),
                           "misses": run.health.misses}),
                );
                process::signal_group(pgid, Signal::SIGKILL);
                let _ = run.child.wait().await;
                kind
            }
            Outcome::SwitchStop => {
                self.stop_run(&mut run, stop_timeout, "stopped: kill switch set")
                    .await;
                return self.enter_stopped();
            }
            Outcome::Restart(reply) => {
                self.stop_run(&mut run, stop_timeout, "stopped: restart asked")
                    .await;
                let next = self.start(true);
                let _ = reply.send(());
                return next;
            }
            Outcome::Shutdown(reply) => {
                if let Some(n) = &self.notify {
                    n.notify("STOPPING=1");
                }
                self.stop_run(&mut run, stop_timeout, "stopped: watchdog stopping")
                    .await;
                return Phase::Exit(reply);
            }
        };
        let end = RunEnd {
            kind,
            uptime: run.started.elapsed(),
            was_ready: run.health.ready,
        };
        // Descendants that escaped the group became our children (we are a subreaper):
        // kill them before the next serve starts, so only this generation's are hit.
        process::sweep_orphans(None, true);
        // A stop may have raced the exit: the switch on disk decides.
        self.read_switch();
        let next = self.decide(&end);
        // Restart first, book-keep after: the log, state.json and alerts cost fsyncs.
        self.record_exit(&run, &end);
        next
    }

    async fn stop_run(&mut self, run: &mut Run, timeout: Duration, reason: &str) {
        let st = process::stop_group(&mut run.child, run.pid as i32, timeout).await;
        process::sweep_orphans(None, true);
        self.log.record(
            Level::Info,
            "serve.stopped",
            json!({"pid": run.pid, "reason": reason, "status": st.map(|s| s.to_string())}),
        );
        let reason = reason.to_owned();
        self.persist(|s| {
            s.child = None;
            s.last_exit_reason = Some(reason);
            s.last_exit_at = Some(crate::time::rfc3339(crate::time::now()));
        });
        self.serve_pid = None;
        self.serve_ready = false;
    }

    /// Applies the policy to a run's end and enters the next phase.
    fn decide(&mut self, end: &RunEnd) -> Phase {
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        let (next, failures) = policy::after_exit(
            &self.opts.config,
            self.failures,
            end,
            self.manual_shutdown,
            jitter,
        );
        let failed_before = self.failures;
        self.failures = failures;
        match next {
            Next::Restart(d) if d.is_zero() => self.start(true),
            Next::Restart(d) => {
                self.log.record(
                    Level::Warn,
                    "watchdog.backoff",
                    json!({"delay_ms": d.as_millis() as u64, "failures": failures}),
                );
                self.enter_waiting(d, false)
            }
            Next::Pause(d) => {
                let failed = failed_before + 1;
                let summary = format!(
                    "serve failed to start {failed} times in a row (last: {}); pausing {:.0}s",
                    end.kind.reason(),
                    d.as_secs_f64()
                );
                self.log.record(
                    Level::Error,
                    "watchdog.crash_loop",
                    json!({"failures": failed, "pause_s": d.as_secs_f64(),
                           "last_exit_reason": end.kind.reason()}),
                );
                self.alert(
                    Severity::Critical,
                    "watchdog.crash_loop",
                    &summary,
                    json!({"failures": failed, "pause_s": d.as_secs_f64(),
                           "last_exit_reason": end.kind.reason(),
                           "state_dir": self.opts.paths.root()}),
                );
                self.enter_waiting(d, true)
            }
            Next::StayStopped => self.enter_stopped(),
        }
    }

    fn record_exit(&mut self, run: &Run, end: &RunEnd) {
        let reason = end.kind.reason();
        let level = if end.kind == ExitKind::RestartRequested {
            Level::Info
        } else {
            Level::Warn
        };
        self.log.record(
            level,
            "serve.exited",
            json!({"pid": run.pid, "reason": reason, "uptime_s": end.uptime.as_secs_f64(),
                   "was_ready": end.was_ready,
                   "failed_start": policy::is_failed_start(end, self.opts.config.min_uptime),
                   "failures": self.failures, "next_pid": self.serve_pid}),
        );
        let r = reason.clone();
        let running = self.serve_pid.is_some();
        self.persist(|s| {
            s.last_exit_reason = Some(r);
            s.last_exit_at = Some(crate::time::rfc3339(crate::time::now()));
            if !running {
                s.child = None;
            }
        });
        if end.kind != ExitKind::RestartRequested {
            let event = match end.kind {
                ExitKind::Hung => "serve.hung",
                ExitKind::NeverReady => "serve.never_ready",
                _ => "serve.crashed",
            };
            self.alert(
                Severity::Warning,
                event,
                &format!("serve (pid {}) {reason}; watchdog restarting it", run.pid),
                json!({"pid": run.pid, "reason": reason, "uptime_s": end.uptime.as_secs_f64(),
                       "failures": self.failures}),
            );
        }
    }

    /// Raises an alert off the actor's task: its files cost fsyncs, and the actor must
    /// keep waiting on serve meanwhile.
    fn alert(&self, sev: Severity, event: &str, summary: &str, payload: serde_json::Value) {
        let (paths, cfg, log) = (
            self.opts.paths.clone(),
            self.opts.alerts.clone(),
            self.log.clone(),
        );
        let (event, summary) = (event.to_owned(), summary.to_owned());
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _enter = rt.enter();
            match crate::alerts::raise(&paths, &cfg, sev, &event, &summary, payload) {
                Ok(a) => log.record(
                    Level::Info,
                    "alert.raised",
                    json!({"severity": sev.as_str(), "alert_event": event, "file": a.file}),
                ),
                Err(e) => log.record(
                    Level::Error,
                    "alert.failed",
                    json!({"alert_event": event, "error": e.to_string()}),
                ),
            }
        });
    }

    /// At start-up: a serve left running by a previous watchdog (killed with SIGKILL,
    /// say) is replaced: its group gets SIGTERM, then SIGKILL, before ours starts.
    async fn replace_leftovers(&mut self, ks: &KillSwitch) {
        let timeout = self.opts.config.stop_timeout;
        let me = std::process::id();
        if let Some(c) = &ks.child {
            let same = process::stat(c.pid)
                .is_some_and(|s| s.start_ticks == c.start_ticks && s.state != 'Z');
            if c.watchdog_pid != me && same {
                self.log.record(
                    Level::Warn,
                    "serve.replacing_leftover",
                    json!({"pid": c.pid, "pgid": c.pgid, "previous_watchdog": c.watchdog_pid}),
                );
                let gone = process::stop_foreign(c.pid, c.pgid, timeout).await;
                self.log.record(
                    Level::Info,
                    "serve.leftover_stopped",
                    json!({"pid": c.pid, "gone": gone}),
                );
            }
        }
        let root = self.opts.paths.root().to_path_buf();
        if let Some(pid) = crate::state::lock_holder(&self.opts.paths.serve_lock()) {
            if pid != me && process::alive(pid) && process::is_serve_of(pid, &root) {
                let pgid = process::stat(pid).map(|s| s.pgrp).unwrap_or(0);
                self.log.record(
                    Level::Warn,
                    "serve.replacing_leftover",
                    json!({"pid": pid, "pgid": pgid, "holds": "serve.lock"}),
                );
                let gone = process::stop_foreign(pid, pgid, timeout).await;
                self.log.record(
                    Level::Info,
                    "serve.leftover_stopped",
                    json!({"pid": pid, "gone": gone}),
                );
            }
        }
        // Whatever else the old tree left (descendants that escaped its process group).
        let mark = self.supervised_by();
        let rest = process::with_env(process::SUPERVISED_ENV, mark.as_os_str().as_encoded_bytes());
        if !rest.is_empty() {
            self.log.record(
                Level::Warn,
                "serve.leftover_descendants",
                json!({"pids": rest}),
            );
            for pid in rest {
                process::stop_foreign(pid, 0, Duration::ZERO).await;
            }
        }
        if ks.child.is_some() {
            self.persist(|s| s.child = None);
        }
    }
}
