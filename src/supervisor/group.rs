//! Starting the children a restart decided on: one at a time in start order, each
//! start published; a start that fails is retried by a message the supervisor sends
//! itself, after the calls already waiting (OTP's `try_again_restart`).

use ractor::{ActorProcessingErr, RpcReplyPort};
use tokio::time::Instant;

use super::actor::Sup;
use super::children::{Key, Pending};
use super::events::{self, RestartEventRef};
use super::msg::{Internal, InternalMsg, SupervisorError, SupervisorMsg};
use super::restart::Failure;
use super::spec::Started;
use crate::bus::Topic;
use crate::kernel::KernelState;

pub(crate) type Reply = RpcReplyPort<Result<(), SupervisorError>>;

impl Sup {
    /// Starts child `key` and publishes the outcome (`kernel.restart.success` or
    /// `.failed`, with the latency since `since`) and logs it.
    pub(crate) async fn start_published(
        &mut self,
        key: Key,
        reason: &str,
        since: Instant,
    ) -> Result<Started, String> {
        let result = self.start(key).await;
        let now = Instant::now();
        let latency_us = now.saturating_duration_since(since).as_micros() as u64;
        let Some(c) = self.children.get_mut(key) else {
            return result;
        };
        if let (Ok(Started::Running), Some(b)) = (&result, c.backoff.as_mut()) {
            b.started(now);
        }
        if result.is_err() {
            c.set_state(KernelState::Failed);
        }
        let ev = RestartEventRef {
            kernel: &c.spec.id,
            supervisor: &self.name,
            reason,
            attempt: c.restarts(),
            latency_us: Some(latency_us),
            in_place: false,
            error: result.as_ref().err().map(String::as_str),
        };
        let topic = match result {
            Ok(_) => Topic::KernelRestartSuccess,
            Err(_) => Topic::KernelRestartFailed,
        };
        events::restart(&self.system.bus, topic, &ev);
        events::log_restart(&ev, result.is_ok());
        result
    }

    /// Starts the waiting children of a group in order. At the first that fails to
    /// start, the rest of the group keeps waiting and a retry of that child is queued
    /// (OTP's `try_again_restart`): the calls already in the mailbox are answered first.
    pub(crate) async fn start_group(&mut self, keys: &[Key], mut reply: Option<(Key, Reply)>) {
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
            let result = self.start_published(k, &p.reason, p.since).await;
            if reply.as_ref().is_some_and(|(rk, _)| *rk == k) {
                if let Some((_, port)) = reply.take() {
                    let _ = port.send(result.clone().map(|_| ()).map_err(|e| {
                        SupervisorError::StartFailed {
                            id: self.child_id(k),
                            reason: e,
                        }
                    }));
                }
            }
            let Err(e) = result else {
                continue;
            };
            let Some(c) = self.children.get_mut(k) else {
                continue;
            };
            c.set_state(KernelState::Restarting);
            c.pending = Some(Pending {
                reason: format!("start failed: {e}"),
                since: p.since,
                due: Instant::now(),
                group: keys[i + 1..].to_vec(),
                retry: true,
            });
            let id = c.spec.id.clone();
            let _ = self
                .myself
                .send_message(SupervisorMsg::Internal(Internal(InternalMsg::TryAgain(id))));
            if let Some((rk, port)) = reply.take() {
                // The child waited for is later in the group: it starts after the retry.
                let _ = port.send(Err(SupervisorError::Restarting(self.child_id(rk))));
            }
            return;
        }
        if let Some((rk, port)) = reply {
            let running = self.children.get(rk).is_some_and(|c| c.is_running());
            let _ = port.send(if running {
                Ok(())
            } else {
                Err(SupervisorError::NotRunning(self.child_id(rk)))
            });
        }
    }

    /// A backoff delay has elapsed: start the group it held back.
    pub(crate) async fn backoff_elapsed(&mut self, id: &str) -> Result<(), ActorProcessingErr> {
        let Some(key) = self.children.key_of(id) else {
            return Ok(());
        };
        let group = match self.children.get_mut(key).and_then(|c| c.pending.as_mut()) {
            // A timer older than the current delay is stale: the right one will come.
            Some(p) if !p.retry && Instant::now() >= p.due && !p.group.is_empty() => {
                std::mem::take(&mut p.group)
            }
            _ => return Ok(()),
        };
        self.start_group(&group, None).await;
        Ok(())
    }

    /// A start that failed is tried again: decided on as a new failure of the child,
    /// so the attempt limit, intensity and backoff apply again.
    pub(crate) async fn try_again(&mut self, id: &str) -> Result<(), ActorProcessingErr> {
        let Some(key) = self.children.key_of(id) else {
            return Ok(());
        };
        let (reason, rest) = match self.children.get_mut(key).and_then(|c| c.pending.as_mut()) {
            // Stale when the child was stopped, restarted or regrouped meanwhile.
            Some(p) if p.retry => (p.reason.clone(), std::mem::take(&mut p.group)),
            _ => return Ok(()),
        };
        self.decide(Failure::retry(key, reason, rest)).await
    }
}
