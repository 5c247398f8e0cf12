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

use serde_json::json;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::events::{EventLog, Level};
use super::handle::{Control, Snapshot, WatchdogHandle};
use super::policy::{self, ExitKind, Health, Phase as PolicyPhase, RunEnd, SwitchAction};
use super::sd_notify::SdNotify;
use super::{process, WatchdogConfig};
use crate::alerts::AlertsConfig;
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
    pub(crate) child_output: Option<super::process::CapturedOutput>,
}

pub(super) enum Phase {
    Stopped,
    Waiting { until: Instant, paused: bool },
    Running(Box<Run>),
    Exit(Option<oneshot::Sender<()>>),
}

pub(super) struct Run {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) started: Instant,
    pub(super) health: Health,
    pub(super) stable: bool,
    pub(super) is_restart: bool,
    pub(super) addr: Option<SocketAddr>,
    /// The last health verdict told to the service manager (healthy or not).
    pub(super) verdict: Option<bool>,
}

pub(super) enum Outcome {
    Exited(Option<ExitStatus>),
    Killed(ExitKind),
    SwitchStop,
    Restart(oneshot::Sender<()>),
    Shutdown(Option<oneshot::Sender<()>>),
}

pub(super) type ProbeFuture = Pin<Box<dyn Future<Output = policy::Probe> + Send>>;

/// The actor's state.
pub(crate) struct Actor {
    pub(super) opts: ActorOptions,
    pub(super) log: Arc<EventLog>,
    pub(super) rx: mpsc::Receiver<Control>,
    pub(super) failures: u32,
    pub(super) manual_shutdown: bool,
    pub(super) restart_count: u64,
    /// Why the next restart happens ([`crate::state::KillSwitch::serve_restarts`]).
    pub(super) restart_cause: &'static str,
    pub(super) notify: Option<SdNotify>,
    pub(super) ready_sent: bool,
    pub(super) phase_name: &'static str,
    pub(super) serve_pid: Option<u32>,
    pub(super) serve_ready: bool,
    pub(super) repair: Option<super::incident_record::Pending>,
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
        restart_cause: "requested",
        notify,
        ready_sent: false,
        phase_name: "stopped",
        serve_pid: None,
        serve_ready: false,
        repair: None,
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
                    self.restart_cause = "requested";
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

    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase_name,
            serve_pid: self.serve_pid,
            serve_ready: self.serve_ready,
            failures: self.failures,
            restart_count: self.restart_count,
            manual_shutdown: self.manual_shutdown,
        }
    }

    pub(super) fn read_switch(&mut self) -> KillSwitch {
        let ks = match KillSwitch::read(&self.opts.paths) {
            Ok(ks) => ks,
            Err(e) => {
                // A switch that cannot be read is as it was last written (the copy in
                // state.json.last-good), else as this watchdog last knew it.
                let known = KillSwitch::last_good(&self.opts.paths);
                let from = if known.is_some() {
                    "state.json.last-good"
                } else {
                    "memory"
                };
                let on = known
                    .as_ref()
                    .map_or(self.manual_shutdown, |k| k.manual_shutdown);
                self.log.record(
                    Level::Error,
                    "kill_switch.unreadable",
                    json!({"error": e.to_string(), "manual_shutdown": on, "from": from}),
                );
                self.manual_shutdown = on;
                return KillSwitch {
                    manual_shutdown: on,
                    unreadable: Some(e.to_string()),
                    ..known.unwrap_or_default()
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

    /// Tells the service manager `state` (a `STATUS=` line).
    pub(super) fn sd(&self, state: &str) {
        if let Some(n) = &self.notify {
            n.notify(state);
        }
    }

    /// Tells the service manager, once, that the watchdog is ready: serve answered its
    /// health probe with the verdict `healthy`, or the kill switch holds serve down, or
    /// the supervised command has no health to wait for. A serve that is down, starting
    /// or degraded is not ready.
    pub(super) fn sd_ready(&mut self) {
        if !self.ready_sent {
            self.sd("READY=1");
            self.ready_sent = true;
        }
    }

    pub(super) fn enter_stopped(&mut self) -> Phase {
        self.phase_name = "stopped";
        self.serve_pid = None;
        self.serve_ready = false;
        // Held down on purpose: the state the operator asked for.
        self.sd_ready();
        self.sd("STATUS=serve stopped (kill switch set)");
        Phase::Stopped
    }

    pub(super) fn enter_waiting(&mut self, delay: Duration, paused: bool) -> Phase {
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
    pub(super) fn start(&mut self, is_restart: bool) -> Phase {
        let started = Instant::now();
        match process::spawn(
            &self.opts.argv,
            &self.supervised_by(),
            self.opts.child_output.as_ref(),
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
                let cause = is_restart.then_some(self.restart_cause);
                self.persist(|s| {
                    s.child = Some(record);
                    s.restart_count = s.restart_count.max(count);
                    if let Some(c) = cause {
                        *s.serve_restarts.entry(c.to_owned()).or_insert(0) += 1;
                    }
                });
                if !probing {
                    self.sd_ready();
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
                    verdict: None,
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
                self.decide(&end, "start_failed")
            }
        }
    }

    pub(super) fn supervised_by(&self) -> std::path::PathBuf {
        let root = self.opts.paths.root();
        std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
    }

    pub(super) fn persist(&self, f: impl FnOnce(&mut KillSwitch)) {
        if let Err(e) = KillSwitch::update(&self.opts.paths, "watchdog", f) {
            self.log.record(
                Level::Error,
                "state.write_failed",
                json!({"error": e.to_string()}),
            );
        }
    }
}
