//! Carrying out restarts: a child's exit (or a forced restart) goes through the
//! strategy, the attempt limit, the intensity window and the backoff, in that order;
//! then siblings are stopped, the restart events published and the children started.
//!
//! A start that fails is not retried in the same message: like OTP's
//! `try_again_restart`, the supervisor queues a retry to itself and answers the calls
//! that arrived meanwhile first. Each retry counts toward intensity again, so a child
//! that cannot start ends, at the latest, with its supervisor failing.

use std::time::Duration;

use ractor::ActorProcessingErr;
use tokio::time::Instant;

use super::actor::Sup;
use super::children::{Key, Pending};
use super::events::{self, RestartEventRef};
use super::group::Reply;
use super::msg::{Internal, InternalMsg, SupervisorError, SupervisorMsg};
use super::spec::{Started, Strategy};
use super::stop::How;
use super::strategy::{plan, scope, ExitKind, Plan, Scope};
use crate::bus::Topic;
use crate::kernel::KernelState;

/// A child that went down (or is to be restarted by force), to be decided on.
pub(crate) struct Failure {
    key: Key,
    exit: ExitKind,
    reason: String,
    /// A forced restart: the child is restarted whatever its restart type, without
    /// backoff or attempt limit.
    force: bool,
    /// Who waits for the outcome of a forced restart.
    reply: Option<Reply>,
    /// Children of an interrupted group start still waiting to be started.
    rest: Vec<Key>,
}

impl Failure {
    /// A start that failed, to be decided on again.
    pub(crate) fn retry(key: Key, reason: String, rest: Vec<Key>) -> Failure {
        Failure {
            key,
            exit: ExitKind::Abnormal,
            reason,
            force: false,
            reply: None,
            rest,
        }
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
    }
}

impl Sup {
    /// A tracked child's actor exited.
    pub(crate) async fn child_exited(
        &mut self,
        key: Key,
        exit: ExitKind,
        reason: String,
    ) -> Result<(), ActorProcessingErr> {
        // The reason is recorded with the restart, or when the child stays down.
        self.children.set_down(key);
        if let Some(e) = self.children.get(key).and_then(|c| c.entry.as_ref()) {
            e.set_actor(None);
        }
        self.decide(Failure {
            key,
            exit,
            reason,
            force: false,
            reply: None,
            rest: Vec::new(),
        })
        .await
    }

    /// `force_restart`: restarts a child now, running or not. A running child is taken
    /// down as by a failure (a hung one, reason `heartbeat_timeout`, is killed at once:
    /// it would never process a graceful stop) and the strategy applies. A child that
    /// is down is started alone, as by `restart_child`.
    pub(crate) async fn force_restart(
        &mut self,
        id: &str,
        reason: String,
        reply: Option<Reply>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(c) = self
            .children
            .key_of(id)
            .and_then(|k| Some((k, self.children.get(k)?)))
        else {
            if let Some(port) = reply {
                let _ = port.send(Err(SupervisorError::NoSuchChild(id.to_owned())));
            }
            return Ok(());
        };
        let (key, running, pending) = (c.0, c.1.is_running(), c.1.pending.is_some());
        if !running && !pending {
            let r = self.restart_stopped(key, &reason).await.map(|_| ());
            if let Some(port) = reply {
                let _ = port.send(r);
            }
            return Ok(());
        }
        if running {
            let how = if reason == "heartbeat_timeout" {
                How::Kill
            } else {
                How::Policy
            };
            self.stop_child(key, how, KernelState::Restarting).await;
        }
        self.decide(Failure {
            key,
            exit: ExitKind::Abnormal,
            reason,
            force: true,
            reply,
            rest: Vec::new(),
        })
        .await
    }

    /// `restart_child` (OTP): starts a child that is down and not waiting for a
    /// restart. The start is not a failure: it does not count toward intensity, the
    /// strategy does not apply, and a start that fails leaves the child down with the
    /// error returned.
    pub(crate) async fn restart_child(&mut self, id: &str) -> Result<Started, SupervisorError> {
        let key = self
            .children
            .key_of(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        match self.children.get(key) {
            Some(c) if c.is_running() => Err(SupervisorError::Running(id.to_owned())),
            Some(c) if c.pending.is_some() => Err(SupervisorError::Restarting(id.to_owned())),
            _ => self.restart_stopped(key, "restart_child").await,
        }
    }

    /// Starts child `key`, down and not waiting, on its own; published as a restart.
    async fn restart_stopped(
        &mut self,
        key: Key,
        reason: &str,
    ) -> Result<Started, SupervisorError> {
        let now = Instant::now();
        let id = self.child_id(key);
        if let Some(c) = self.children.get_mut(key) {
            c.record_restart(reason);
            c.set_state(KernelState::Restarting);
            self.publish_initiated(key, reason);
        }
        self.start_published(key, reason, now)
            .await
            .map_err(|e| SupervisorError::StartFailed { id, reason: e })
    }

    /// The other members of a group restart that child `id` holds back (backoff, or a
    /// start to try again). When that child is terminated or deleted, they must not
    /// wait for it any more: the caller starts them with [`Sup::start_orphans`].
    pub(crate) fn orphans_of(&self, id: &str) -> Vec<Key> {
        let Some(key) = self.children.key_of(id) else {
            return Vec::new();
        };
        match self.children.get(key).and_then(|c| c.pending.as_ref()) {
            Some(p) => p.group.iter().copied().filter(|k| *k != key).collect(),
            None => Vec::new(),
        }
    }

    /// Starts children left waiting by [`Sup::orphans_of`].
    pub(crate) async fn start_orphans(&mut self, keys: Vec<Key>) -> Result<(), ActorProcessingErr> {
        self.start_group(&keys, None).await;
        Ok(())
    }

    fn plan_for(&self, f: &Failure) -> Plan<Key> {
        let strategy = self.strategy;
        match scope(strategy) {
            Scope::Only => {
                let view = self.children.get(f.key).map(|c| (f.key, c.view()));
                plan(strategy, f.key, f.exit, f.force, view)
            }
            Scope::After => plan(
                strategy,
                f.key,
                f.exit,
                f.force,
                self.children.views_from(f.key),
            ),
            Scope::All => plan(strategy, f.key, f.exit, f.force, self.children.views()),
        }
    }

    /// Decides on one failure and carries it out.
    pub(crate) async fn decide(&mut self, mut f: Failure) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let Some(child) = self.children.get_mut(f.key) else {
            if let Some(port) = f.reply.take() {
                let _ = port.send(Err(SupervisorError::NoSuchChild(f.key.to_string())));
            }
            return Ok(());
        };
        child.pending = None;
        let significant = child.spec.significant;
        let plan = self.plan_for(&f);
        if !plan.restarts {
            let id = self.child_id(f.key);
            if let Some(c) = self.children.get_mut(f.key) {
                c.set_reason(&f.reason);
            }
            self.stays_down(f.key);
            if significant && self.auto_shutdown_due() {
                self.auto_shutdown(&id);
                return Ok(());
            }
            self.start_group(&f.rest, None).await;
            return Ok(());
        }
        if !f.force {
            let over = self
                .children
                .get(f.key)
                .and_then(|c| c.attempts.as_ref())
                .is_some_and(|w| !w.try_record(now));
            if over {
                self.leave_down(f.key, &f.reason);
                self.start_group(&f.rest, None).await;
                return Ok(());
            }
        }
        if !self.intensity.try_record(now) {
            if let Some(port) = f.reply.take() {
                let _ = port.send(Err(SupervisorError::StartFailed {
                    id: self.child_id(f.key),
                    reason: "restart intensity exceeded; the supervisor fails".to_owned(),
                }));
            }
            return Err(self.escalate(f.key, &f.reason).await);
        }
        self.shared.count_restart();

        for &k in &plan.stop {
            self.stop_child(k, How::Policy, KernelState::Restarting)
                .await;
        }
        for &k in &plan.retire {
            // Temporary siblings taken down by this failure are not restarted.
            self.stays_down(k);
        }
        self.initiate(&plan, &f, now);

        let delay = if f.force {
            Duration::ZERO
        } else {
            self.backoff_delay(f.key, now)
        };
        if !delay.is_zero() {
            if let Some(p) = self
                .children
                .get_mut(f.key)
                .and_then(|c| c.pending.as_mut())
            {
                p.due = now + delay;
                p.group = plan.restart;
            }
            let id = self.child_id(f.key);
            tracing::debug!(child = %id, ?delay, "restart delayed by backoff");
            self.myself.send_after(delay, move || {
                SupervisorMsg::Internal(Internal(InternalMsg::BackoffElapsed(id)))
            });
            return Ok(());
        }
        let reply = f.reply.take().map(|p| (f.key, p));
        self.start_group(&plan.restart, reply).await;
        Ok(())
    }

    /// Marks the children of a plan as restarting, counts their restarts and publishes
    /// `kernel.restart.initiated` for each. A child already waiting (backoff, a start
    /// to try again) is started with this group instead, and not counted twice.
    fn initiate(&mut self, plan: &Plan<Key>, f: &Failure, now: Instant) {
        let failed_id = self.child_id(f.key);
        for &k in &plan.restart {
            let Some(c) = self.children.get_mut(k) else {
                continue;
            };
            if let Some(p) = c.pending.as_mut() {
                p.due = now;
                p.group.clear();
                p.retry = false;
                continue;
            }
            let reason = if k == f.key {
                f.reason.clone()
            } else {
                format!(
                    "{} restart after {failed_id} failed: {}",
                    strategy_name(self.strategy),
                    f.reason
                )
            };
            c.record_restart(&reason);
            c.set_state(KernelState::Restarting);
            self.publish_initiated(k, &reason);
            if let Some(c) = self.children.get_mut(k) {
                c.pending = Some(Pending {
                    reason,
                    since: now,
                    due: now,
                    group: Vec::new(),
                    retry: false,
                });
            }
        }
    }

    /// Publishes `kernel.restart.initiated` for child `key`.
    fn publish_initiated(&self, key: Key, reason: &str) {
        let Some(c) = self.children.get(key) else {
            return;
        };
        let ev = RestartEventRef {
            kernel: &c.spec.id,
            supervisor: &self.name,
            reason,
            attempt: c.restarts(),
            latency_us: None,
            in_place: false,
            error: None,
        };
        events::restart(&self.system.bus, Topic::KernelRestartInitiated, &ev);
    }

    fn backoff_delay(&mut self, key: Key, now: Instant) -> Duration {
        let Some(c) = self.children.get_mut(key) else {
            return Duration::ZERO;
        };
        match (c.spec.backoff, c.backoff.as_mut()) {
            (Some(b), Some(state)) => state.next(&b, now, rand::random::<f64>()),
            _ => Duration::ZERO,
        }
    }
}
