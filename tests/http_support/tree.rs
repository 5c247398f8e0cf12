//! A small one_for_one supervisor over real kernel actors, registering them in the
//! registry the way the tree does, for tests that need kernels to restart and stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::Topic;
use grace::kernel::{
    spawn_kernel, Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, KernelState,
    KernelStatus, Request,
};
use grace::supervisor::{SupervisorError, SupervisorMsg};
use grace::tree::System;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::{json, Value};

/// A kernel that answers `get` with how many requests it has handled.
#[derive(Default)]
pub struct Counter {
    n: u64,
}

#[async_trait]
impl Kernel for Counter {
    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "get" => {
                self.n += 1;
                Ok(json!(self.n))
            }
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("unknown op {other}"),
            }),
        }
    }
}

/// A spec of a [`Counter`] kernel.
pub fn counter(name: &str, critical: bool) -> KernelSpec {
    let spec = KernelSpec::new(name, Arc::new(|| Box::new(Counter::default())));
    if critical {
        spec.critical()
    } else {
        spec
    }
}

struct MiniSup;

struct Child {
    spec: KernelSpec,
    status: Arc<KernelStatus>,
    actor: Option<ActorRef<KernelMsg>>,
}

struct SupState {
    system: Arc<System>,
    children: HashMap<String, Child>,
}

impl SupState {
    async fn spawn(
        &mut self,
        id: &str,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), SupervisorError> {
        let system = self.system.clone();
        let c = self
            .children
            .get_mut(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        let a = spawn_kernel(
            &c.spec,
            c.status.clone(),
            system.clone(),
            myself.clone(),
            false,
        )
        .await
        .map_err(|e| SupervisorError::StartFailed {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        c.actor = Some(a.clone());
        system.registry.set_actor(id, Some(a));
        Ok(())
    }

    async fn take_down(&mut self, id: &str, graceful: bool) -> Result<(), SupervisorError> {
        let c = self
            .children
            .get_mut(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        if let Some(a) = c.actor.take() {
            self.system.registry.set_actor(id, None);
            let t = Some(Duration::from_secs(2));
            if graceful {
                if a.stop_and_wait(None, t).await.is_err() {
                    let _ = a.kill_and_wait(t).await;
                }
            } else {
                let _ = a.kill_and_wait(t).await;
            }
        }
        Ok(())
    }

    async fn restart(
        &mut self,
        id: &str,
        reason: &str,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), SupervisorError> {
        self.system.bus.emit(
            Topic::KernelRestartInitiated,
            Some(id),
            json!({ "reason": reason }),
        );
        self.take_down(id, false).await?;
        if let Some(c) = self.children.get(id) {
            c.status.set_state(KernelState::Restarting);
            c.status.record_restart(reason);
        }
        let r = self.spawn(id, myself).await;
        let topic = if r.is_ok() {
            Topic::KernelRestartSuccess
        } else {
            Topic::KernelRestartFailed
        };
        self.system
            .bus
            .emit(topic, Some(id), json!({ "reason": reason }));
        r
    }
}

impl Actor for MiniSup {
    type Msg = SupervisorMsg;
    type State = SupState;
    type Arguments = (Arc<System>, Vec<KernelSpec>);

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        (system, specs): Self::Arguments,
    ) -> Result<SupState, ActorProcessingErr> {
        let mut children = HashMap::new();
        for spec in specs {
            let status = Arc::new(KernelStatus::new(&spec));
            system.registry.register(status.clone(), myself.clone());
            children.insert(
                spec.name.clone(),
                Child {
                    spec,
                    status,
                    actor: None,
                },
            );
        }
        Ok(SupState { system, children })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        let ids: Vec<String> = state.children.keys().cloned().collect();
        for id in ids {
            state.spawn(&id, &myself).await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::RestartChild { id, reason, reply } => {
                let r = state.restart(&id, &reason, &myself).await;
                if let Some(p) = reply {
                    let _ = p.send(r);
                }
            }
            SupervisorMsg::TerminateChild(id, port) => {
                let r = state.take_down(&id, true).await;
                if let Some(c) = state.children.get(&id) {
                    c.status.set_state(KernelState::Stopped);
                }
                let _ = port.send(r);
            }
            SupervisorMsg::WhichChildren(port) => {
                let _ = port.send(Vec::new());
            }
            _ => {}
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            let id = state
                .children
                .iter()
                .find(|(_, c)| {
                    c.actor
                        .as_ref()
                        .is_some_and(|a| a.get_id() == cell.get_id())
                })
                .map(|(id, _)| id.clone());
            if let Some(id) = id {
                if let Some(c) = state.children.get_mut(&id) {
                    c.actor = None;
                }
                let _ = state.restart(&id, &err.to_string(), &myself).await;
            }
        }
        Ok(())
    }
}

/// Starts a supervisor named `name` over `specs`, registered in `system`'s registry;
/// returns once every kernel runs.
pub async fn supervise(
    system: &Arc<System>,
    _name: &str,
    specs: Vec<KernelSpec>,
) -> ActorRef<SupervisorMsg> {
    let (sup, _join) = Actor::spawn(None, MiniSup, (system.clone(), specs))
        .await
        .expect("spawn supervisor");
    sup
}
