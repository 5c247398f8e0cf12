//! What follows the end of a run: the policy's decision carried out (restart, backoff,
//! pause with a critical alert, stay stopped), its records and alerts, and the
//! replacement of a serve left running by a killed predecessor.

use crate::alerts::Severity;
use crate::state::KillSwitch;

use super::policy::{self, ExitKind, Next, RunEnd};
use super::process;
use std::time::Duration;

use serde_json::json;

use super::actor::{Actor, Phase, Run};
use super::events::Level;

impl Actor {
    /// Applies the policy to a run's end and enters the next phase; a restart that
    /// follows is counted under `cause`.
    pub(super) fn decide(&mut self, end: &RunEnd, cause: &'static str) -> Phase {
        self.restart_cause = cause;
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
                self.persist(|s| s.crash_loops += 1);
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

    pub(super) fn record_exit(&mut self, run: &Run, end: &RunEnd) {
        self.note_fault(run, end);
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
        if run.is_restart && !end.was_ready && end.kind != ExitKind::RestartRequested {
            // The restart never came up healthy (`grace.restart.success` marks those that did).
            self.log.record(
                Level::Warn,
                "grace.restart.failed",
                json!({"pid": run.pid, "reason": reason, "failures": self.failures}),
            );
        }
        let r = reason.clone();
        let running = self.serve_pid.is_some();
        let cause = end.kind.cause();
        self.persist(|s| {
            s.last_exit_cause = Some(cause.to_owned());
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
    pub(super) async fn replace_leftovers(&mut self, ks: &KillSwitch) {
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
