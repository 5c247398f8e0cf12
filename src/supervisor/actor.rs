//! The supervisor actor: receives its children's exits and the calls of its handles, and
//! carries out what the decision functions ([`super::strategy`], [`super::intensity`],
//! [`super::backoff`]) say.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::Instrument;

use super::children::Children;
use super::handle::Shared;
use super::in_place::SharedWindow;
use super::msg::{InternalMsg, SupervisorError, SupervisorMsg};
use super::spec::{AutoShutdown, RestartType, Started, Strategy, SupervisorSpec};
use super::strategy::ExitKind;
use crate::kernel::KernelState;
use crate::tree::System;

/// The ractor actor behind every supervisor.
pub(crate) struct SupervisorActor;

/// What a supervisor actor is started with.
pub(crate) struct SupervisorArgs {
    pub spec: SupervisorSpec,
    pub system: Arc<System>,
    pub shared: Arc<Shared>,
}

/// The supervisor's state.
pub(crate) struct Sup {
    pub name: Arc<str>,
    pub strategy: Strategy,
    pub max_children: Option<usize>,
    pub auto_shutdown: AutoShutdown,
    pub system: Arc<System>,
    pub myself: ActorRef<SupervisorMsg>,
    pub children: Children,
    pub intensity: SharedWindow,
    pub shared: Arc<Shared>,
    pub span: tracing::Span,
}

/// Exit reasons ractor reports for a stop that was not asked of the child itself.
fn exit_kind(reason: Option<&str>) -> ExitKind {
    match reason {
        Some("killed") | Some("actor_task_cancelled") => ExitKind::Abnormal,
        _ => ExitKind::Normal,
    }
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = Sup;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<Sup, ActorProcessingErr> {
        let SupervisorArgs {
            spec,
            system,
            shared,
        } = args;
        spec.validate()?;
        let span = tracing::info_span!("supervisor", name = %spec.name);
        let mut sup = Sup {
            name: Arc::from(spec.name.as_str()),
            strategy: spec.strategy,
            max_children: spec.max_children,
            auto_shutdown: spec.auto_shutdown,
            system,
            myself,
            children: Children::default(),
            intensity: SharedWindow::new(spec.intensity.max_restarts, spec.intensity.max_window),
            shared,
            span: span.clone(),
        };
        async {
            for child in spec.children {
                let id = child.id.clone();
                if sup.children.key_of(&id).is_some() {
                    sup.stop_all(KernelState::Stopped, "start failed").await;
                    return Err(SupervisorError::AlreadyExists(id).into());
                }
                let temporary = child.restart == RestartType::Temporary;
                let key = sup.children.insert(child);
                match sup.start(key).await {
                    Ok(Started::Running) => {}
                    // OTP: an ignored temporary child is not kept; any other is, down.
                    Ok(Started::Ignored) if temporary => sup.forget(key),
                    Ok(Started::Ignored) => {}
                    Err(reason) => {
                        tracing::error!(child = %id, %reason, "child failed to start");
                        sup.stop_all(KernelState::Stopped, "start failed").await;
                        return Err(SupervisorError::StartFailed { id, reason }.into());
                    }
                }
            }
            tracing::debug!(children = sup.children.len(), "supervisor started");
            Ok(())
        }
        .instrument(span)
        .await
        .map(|()| sup)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        sup: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        let span = sup.span.clone();
        sup.dispatch(msg).instrument(span).await
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        sup: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, kind, reason) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, ExitKind::Abnormal, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let kind = exit_kind(reason.as_deref());
                (cell, kind, reason.unwrap_or_else(|| "normal".to_owned()))
            }
            _ => return Ok(()),
        };
        let Some(key) = sup.children.key_of_actor(cell.get_id()) else {
            // An incarnation we no longer track (stopped, killed or abandoned) reporting
            // late: its replacement, if any, is already running.
            tracing::trace!(actor = %cell.get_id(), %reason, "exit of an untracked actor ignored");
            return Ok(());
        };
        let span = sup.span.clone();
        sup.child_exited(key, kind, reason).instrument(span).await
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        sup: &mut Sup,
    ) -> Result<(), ActorProcessingErr> {
        let span = sup.span.clone();
        async {
            sup.stop_all(KernelState::Stopped, "shutdown").await;
            tracing::debug!("supervisor stopped");
        }
        .instrument(span)
        .await;
        sup.shared.set_exit(super::SupervisorExit::Normal);
        Ok(())
    }
}

impl Sup {
    async fn dispatch(&mut self, msg: SupervisorMsg) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::WhichChildren(port) => {
                let _ = port.send(self.children.infos());
            }
            SupervisorMsg::CountChildren(port) => {
                let _ = port.send(self.children.counts());
            }
            SupervisorMsg::StartChild(spec, port) => {
                let r = self.add_child(*spec).await;
                let _ = port.send(r);
            }
            SupervisorMsg::TerminateChild(id, port) => {
                let orphans = self.orphans_of(&id);
                let r = self.terminate_child(&id).await;
                let _ = port.send(r);
                return self.start_orphans(orphans).await;
            }
            SupervisorMsg::DeleteChild(id, port) => {
                let orphans = self.orphans_of(&id);
                let r = self.delete_child(&id);
                let deleted = r.is_ok();
                let _ = port.send(r);
                if deleted {
                    return self.start_orphans(orphans).await;
                }
            }
            SupervisorMsg::ChildSupervisor(id, port) => {
                let _ = port.send(self.child_supervisor(&id));
            }
            SupervisorMsg::RestartChild(id, port) => {
                let r = self.restart_child(&id).await;
                let _ = port.send(r);
            }
            SupervisorMsg::ForceRestart { id, reason, reply } => {
                return self.force_restart(&id, reason, reply).await;
            }
            SupervisorMsg::GetChildspec(id, port) => {
                let _ = port.send(self.childspec(&id));
            }
            SupervisorMsg::Internal(internal) => match internal.0 {
                InternalMsg::BackoffElapsed(id) => return self.backoff_elapsed(&id).await,
                InternalMsg::TryAgain(id) => return self.try_again(&id).await,
            },
        }
        Ok(())
    }
}
