//! The running phase of the watchdog actor: waiting at once on serve's exit, the
//! control queue, health probes, the stability timer and SIGCHLD; then carrying out
//! what the run's end calls for.

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::handle::Control;
use super::policy::{self, ExitKind, Phase as PolicyPhase, RunEnd, SwitchAction, Verdict};
use super::{probe, process};
use std::time::Duration;

use serde_json::json;

use super::actor::{Actor, Outcome, Phase, ProbeFuture, Run};
use super::events::Level;
const END_WAIT: Duration = crate::state::ServeInfo::GENERATION_END_WAIT;

impl Actor {
    /// Waits on everything at once while serve runs.
    pub(super) async fn supervise(
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
                    self.tell_verdict(run, p);
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
        self.note_healthy(run);
        if run.stable {
            self.mark_stable(run);
        }
    }

    /// Tells the service manager serve's health verdict when it changes: `READY=1` at
    /// the first `healthy`, and a `STATUS=` line for each change.
    fn tell_verdict(&mut self, run: &mut Run, p: policy::Probe) {
        let healthy = match p {
            policy::Probe::Healthy => true,
            policy::Probe::Alive | policy::Probe::Failing => false,
            policy::Probe::NoAnswer => return,
        };
        if run.verdict == Some(healthy) {
            return;
        }
        run.verdict = Some(healthy);
        if healthy {
            self.sd_ready();
            self.sd(&format!("STATUS=serve healthy (pid {})", run.pid));
        } else {
            self.sd(&format!(
                "STATUS=serve up, not healthy (pid {}; see grace status)",
                run.pid
            ));
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

    /// How long stopping serve `pid` may take: the shutdown bound it recorded in
    /// `serve.json` (computed from its tree) and a margin, at least the configured
    /// `stop_timeout`.
    pub(super) fn stop_timeout_for(&self, pid: u32) -> Duration {
        let info = crate::state::ServeInfo::read(&self.opts.paths)
            .ok()
            .flatten()
            .filter(|i| i.pid == pid);
        crate::state::ServeInfo::stop_timeout(info.as_ref(), self.opts.config.stop_timeout)
    }

    /// Ends every process of the generation of serve `pid` (see
    /// [`process::end_generation`]) and logs what it did.
    async fn end_generation(&mut self, pid: u32) {
        let mark = self.supervised_by();
        let left = process::end_generation(pid, &mark, END_WAIT).await;
        if !left.is_empty() {
            self.log.record(
                Level::Error,
                "serve.generation_left",
                json!({"pid": pid, "left": left.iter()
                    .map(|(p, c)| json!({"pid": p, "command": c})).collect::<Vec<_>>()}),
            );
        }
    }

    /// Carries out what follows the end of `supervise`.
    pub(super) async fn after(&mut self, mut run: Box<Run>, out: Outcome) -> Phase {
        let pgid = run.pid as i32;
        let stop_timeout = self.stop_timeout_for(run.pid);
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
                self.restart_cause = "requested";
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
        // Descendants that escaped the group became our children (we are a subreaper),
        // or will as their parents die, or live in the dead serve's cgroups: end them
        // all before the next serve starts, so only this generation's are hit.
        self.end_generation(run.pid).await;
        // A stop may have raced the exit: the switch on disk decides.
        self.read_switch();
        let next = self.decide(&end, end.kind.cause());
        // Restart first, book-keep after: the log, state.json and alerts cost fsyncs.
        self.record_exit(&run, &end);
        next
    }

    async fn stop_run(&mut self, run: &mut Run, timeout: Duration, reason: &str) {
        let st = process::stop_group(&mut run.child, run.pid as i32, timeout).await;
        self.end_generation(run.pid).await;
        self.log.record(
            Level::Info,
            "serve.stopped",
            json!({"pid": run.pid, "reason": reason, "status": st.map(|s| s.to_string())}),
        );
        let reason = reason.to_owned();
        self.persist(|s| {
            s.child = None;
            s.last_exit_cause = Some("stopped".to_owned());
            s.last_exit_reason = Some(reason);
            s.last_exit_at = Some(crate::time::rfc3339(crate::time::now()));
        });
        self.serve_pid = None;
        self.serve_ready = false;
    }
}
