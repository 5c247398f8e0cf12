//! Carrying out restarts: a child's exit (or an explicit restart) goes through the
//! strategy, the attempt limit, the intensity window and the backoff, in that order;
//! then siblings are stopped, the restart events published and the children started.

use std::time::Duration;

use ractor::{ActorProcessingErr, RpcReplyPort};
use tokio::time::Instant;

use super::actor::Sup;
use super::children::{Key, Pending};
use super::events::{self, RestartEventRef};
use super::spec::{Strategy, SupervisorError, SupervisorMsg};
use super::stop::How;
use super::strategy::{plan, scope, ExitKind, Plan, Scope};
use crate::bus::Topic;
use crate::kernel::KernelState;

type Reply = RpcReplyPort<Result<(), SupervisorError>>;

/// A child that went down (or is to be restarted on request), to be decided on.
pub(crate) struct Failure {
    key: Key,
    exit: ExitKind,
    reason: String,
    /// An explicit restart: only this child, whatever its restart type, no backoff, no
    /// attempt limit (it is how an operator brings back a child left down).
    force: bool,
    /// Who waits for the outcome of an explicit restart.
    reply: Option<Reply>,
    /// Children of an interrupted group start still waiting to be started.
    rest: Vec<Key>,
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
        self.run_failures(Failure {
            key,
            exit,
            reason,
            force: false,
            reply: None,
            rest: Vec::new(),
        })
        .await
    }

    /// `restart_child`: restarts one child now, running or not. A hung child (reason
    /// `heartbeat_timeout`) is killed at once: it would never process a graceful stop.
    pub(crate) async fn restart_child(
        &mut self,
        id: &str,
        reason: String,
        reply: Option<Reply>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(key) = self.children.key_of(id) else {
            if let Some(port) = reply {
                let _ = port.send(Err(SupervisorError::NoSuchChild(id.to_owned())));
            }
            return Ok(());
        };
        let how = if reason == "heartbeat_timeout" {
            How::Kill
        } else {
            How::Policy
        };
        let orphans = self.orphans_of(id);
        self.stop_child(key, how, KernelState::Restarting).await;
        self.run_failures(Failure {
            key,
            exit: ExitKind::Abnormal,
            reason,
            force: true,
            reply,
            rest: Vec::new(),
        })
        .await?;
        self.start_orphans(orphans).await
    }

    /// The other members of a group restart that child `id` holds back (backoff). When
    /// that child is terminated, deleted or restarted on request, they must not wait
    /// for its timer any more: the caller starts them with [`Sup::start_orphans`].
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
        if keys.is_empty() {
            return Ok(());
        }
        match self.start_group(&keys, None).await? {
            Some(f) => self.run_failures(f).await,
            None => Ok(()),
        }
    }

    async fn run_failures(&mut self, first: Failure) -> Result<(), ActorProcessingErr> {
        let mut next = Some(first);
        while let Some(f) = next.take() {
            next = self.decide(f).await?;
        }
        Ok(())
    }

    fn plan_for(&self, f: &Failure) -> Plan<Key> {
        let strategy = if f.force {
            Strategy::OneForOne
        } else {
            self.strategy
        };
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

    /// Decides on one failure and carries it out; returns the next failure when a child
    /// failed to start again.
    async fn decide(&mut self, mut f: Failure) -> Result<Option<Failure>, ActorProcessingErr> {
        let now = Instant::now();
        let Some(child) = self.children.get_mut(f.key) else {
            if let Some(port) = f.reply.take() {
                let _ = port.send(Err(SupervisorError::NoSuchChild(f.key.to_string())));
            }
            return Ok(None);
        };
        child.pending = None;
        let plan = self.plan_for(&f);
        if !plan.restarts {
            if let Some(c) = self.children.get_mut(f.key) {
                c.set_reason(&f.reason);
            }
            self.stays_down(f.key);
            return self.start_group(&f.rest, None).await;
        }
        if !f.force {
            let over = self
                .children
                .get(f.key)
                .and_then(|c| c.attempts.as_ref())
                .is_some_and(|w| !w.try_record(now));
            if over {
                self.leave_down(f.key, &f.reason);
                return self.start_group(&f.rest, None).await;
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
            self.myself
                .send_after(delay, move || SupervisorMsg::BackoffElapsed(id));
            return Ok(None);
        }
        let reply = f.reply.take().map(|p| (f.key, p));
        self.start_group(&plan.restart, reply).await
    }

    /// Marks the children of a plan as restarting, counts their restarts and publishes
    /// `kernel.restart.initiated` for each.
    fn initiate(&mut self, plan: &Plan<Key>, f: &Failure, now: Instant) {
        let failed_id = self.child_id(f.key);
        for &k in &plan.restart {
            let Some(c) = self.children.get_mut(k) else {
                continue;
            };
            if let Some(p) = c.pending.as_mut() {
                // Already waiting (backoff): it is started with this group instead.
                p.due = now;
                p.group.clear();
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
            let ev = RestartEventRef {
                kernel: &c.spec.id,
                supervisor: &self.name,
                reason: &reason,
                attempt: c.restarts(),
                latency_us: None,
                in_place: false,
                error: None,
            };
            events::restart(&self.system.bus, Topic::KernelRestartInitiated, &ev);
            c.pending = Some(Pending {
                reason,
                since: now,
                due: now,
                group: Vec::new(),
            });
        }
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

    /// Starts the waiting children of a group in order. Stops at the first that fails to
    /// start and returns that failure, with the rest of the group still waiting.
    async fn start_group(
        &mut self,
        keys: &[Key],
        mut reply: Option<(Key, Reply)>,
    ) -> Result<Option<Failure>, ActorProcessingErr> {
        for (i, &k) in keys.iter().enumerate() {
            let Some(c) = self.children.get_mut(k) else {
                continue;
            };
            if c.is_running() {
                continue;
            }
            let Some(p) = c.pending.take() else {
                continue;
            };
            let result = self.start(k).await;
            let now = Instant::now();
            let latency_us = now.saturating_duration_since(p.since).as_micros() as u64;
            let Some(c) = self.children.get_mut(k) else {
                continue;
            };
            if let (Ok(()), Some(b)) = (&result, c.backoff.as_mut()) {
                b.started(now);
            }
            if result.is_err() {
                c.set_state(KernelState::Failed);
            }
            let ev = RestartEventRef {
                kernel: &c.spec.id,
                supervisor: &self.name,
                reason: &p.reason,
                attempt: c.restarts(),
                latency_us: Some(latency_us),
                in_place: false,
                error: result.as_ref().err().map(String::as_str),
            };
            let topic = match result {
                Ok(()) => Topic::KernelRestartSuccess,
                Err(_) => Topic::KernelRestartFailed,
            };
            events::restart(&self.system.bus, topic, &ev);
            events::log_restart(&ev, result.is_ok());
            if reply.as_ref().is_some_and(|(rk, _)| *rk == k) {
                if let Some((_, port)) = reply.take() {
                    let _ = port.send(result.clone().map_err(|e| SupervisorError::StartFailed {
                        id: ev.kernel.to_owned(),
                        reason: e,
                    }));
                }
            }
            if let Err(e) = result {
                return Ok(Some(Failure {
                    key: k,
                    exit: ExitKind::Abnormal,
                    reason: format!("start failed: {e}"),
                    force: false,
                    reply: None,
                    rest: keys[i + 1..].to_vec(),
                }));
            }
        }
        Ok(None)
    }

    /// A backoff delay has elapsed: start the group it held back.
    pub(crate) async fn backoff_elapsed(&mut self, id: &str) -> Result<(), ActorProcessingErr> {
        let Some(key) = self.children.key_of(id) else {
            return Ok(());
        };
        let group = match self.children.get_mut(key).and_then(|c| c.pending.as_mut()) {
            // A timer older than the current delay is stale: the right one will come.
            Some(p) if Instant::now() >= p.due && !p.group.is_empty() => {
                std::mem::take(&mut p.group)
            }
            _ => return Ok(()),
        };
        if let Some(f) = self.start_group(&group, None).await? {
            self.run_failures(f).await?;
        }
        Ok(())
    }
}
