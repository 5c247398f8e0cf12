//! Starting single children, and the calls that add, stop, remove and describe them
//! (OTP's `start_child`, `terminate_child`, `delete_child`, `get_childspec`).

use super::actor::Sup;
use super::children::{Incarnation, Key};
use super::handle::{spawn, SupervisorHandle};
use super::in_place::InPlace;
use super::msg::SupervisorError;
use super::spec::{ChildKind, ChildSpec, RestartType, Started, Strategy};
use super::stop::How;
use crate::kernel::{self, KernelError, KernelState};

impl Sup {
    /// What a kernel child needs to repair a panic in place, if it may: its spec allows
    /// it, only the failed child would be restarted anyway (one_for_one, which a dynamic
    /// supervisor is), it is to be restarted after a panic at all (not temporary), and no
    /// backoff delay is to be honoured first.
    fn in_place(&self, key: Key) -> Option<InPlace> {
        let child = self.children.get(key)?;
        let spec = &child.spec;
        let allowed = match &spec.kind {
            ChildKind::Kernel(k) => {
                k.restart_in_place
                    && self.strategy == Strategy::OneForOne
                    && spec.restart != RestartType::Temporary
                    && spec.backoff.is_none()
            }
            ChildKind::Supervisor(_) => false,
        };
        allowed.then(|| InPlace {
            intensity: self.intensity.clone(),
            attempts: child.attempts.clone(),
            shared: self.shared.clone(),
            supervisor: self.name.clone(),
        })
    }

    /// Starts child `key` now. On success it is linked to this supervisor and tracked
    /// (or, if its start declined, stays down as `ignored`); on failure the error says
    /// why. A kernel's start is bounded by its `start_timeout`.
    pub(crate) async fn start(&mut self, key: Key) -> Result<Started, String> {
        let Some(child) = self.children.get(key) else {
            return Err(format!("no child with key {key}"));
        };
        let run = match &child.spec.kind {
            ChildKind::Kernel(ks) => {
                // The entry (and status) outlives this child's restarts, and a restart
                // of this supervisor too (same name, same status).
                let entry = match &child.entry {
                    Some(e) => e.clone(),
                    None => self
                        .system
                        .registry
                        .register_spec(ks, self.myself.clone())
                        .map_err(|e| e.to_string())?,
                };
                entry.status.set_state(KernelState::Starting);
                let in_place = self.in_place(key);
                let limit = ks.start_timeout;
                let spawned = tokio::time::timeout(
                    limit,
                    kernel::spawn(
                        ks,
                        entry.status.clone(),
                        self.system.clone(),
                        self.myself.clone(),
                        in_place,
                    ),
                )
                .await;
                if let Some(c) = self.children.get_mut(key) {
                    c.entry = Some(entry.clone());
                }
                let actor = match spawned {
                    Ok(Ok(actor)) => actor,
                    Ok(Err(KernelError::Ignore)) => {
                        entry.status.set_state(KernelState::Stopped);
                        entry.status.set_reason("ignored");
                        return Ok(Started::Ignored);
                    }
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => {
                        return Err(format!(
                            "start did not finish within its start_timeout ({limit:?})"
                        ))
                    }
                };
                entry.set_actor(Some(actor.clone()));
                // Up only now that callers reach the new actor by name.
                entry.status.set_state(KernelState::Running);
                Incarnation::Kernel(actor)
            }
            ChildKind::Supervisor(ss) => {
                let fut = spawn(
                    ss.clone(),
                    self.system.clone(),
                    Some(self.myself.get_cell()),
                );
                match fut.await {
                    Ok(handle) => Incarnation::Supervisor(handle),
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        self.children.set_running(key, run);
        if let Some(c) = self.children.get_mut(key) {
            if c.entry.is_none() {
                c.set_state(KernelState::Running);
            }
        }
        Ok(Started::Running)
    }

    /// `start_child`: adds a child at the end of the start order and starts it. A child
    /// that fails to start is not kept; one whose start declined is kept, down, unless
    /// it is temporary.
    pub(crate) async fn add_child(&mut self, spec: ChildSpec) -> Result<Started, SupervisorError> {
        spec.validate(self.auto_shutdown)?;
        if self.children.key_of(&spec.id).is_some() {
            return Err(SupervisorError::AlreadyExists(spec.id));
        }
        if let Some(max) = self.max_children {
            if self.children.len() >= max {
                return Err(SupervisorError::MaxChildren {
                    name: self.name.to_string(),
                    max,
                });
            }
        }
        if let ChildKind::Kernel(k) = &spec.kind {
            if let Some(holder) = self
                .system
                .registry
                .holder_other_than(&k.name, &self.myself)
            {
                return Err(SupervisorError::NameTaken {
                    name: k.name.clone(),
                    holder,
                });
            }
        }
        let id = spec.id.clone();
        let temporary = spec.restart == RestartType::Temporary;
        let key = self.children.insert(spec);
        match self.start(key).await {
            Ok(Started::Ignored) if temporary => {
                self.forget(key);
                Ok(Started::Ignored)
            }
            Ok(started) => Ok(started),
            Err(reason) => {
                self.forget(key);
                Err(SupervisorError::StartFailed { id, reason })
            }
        }
    }

    /// `terminate_child`: stops a child by its shutdown policy. It stays down (state
    /// `stopped`) until restarted and keeps its spec; a temporary child is forgotten
    /// (OTP). Not a failure: the strategy does not apply and a significant child's stop
    /// does not end the supervisor.
    pub(crate) async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self
            .children
            .key_of(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        self.stop_child(key, How::Policy, KernelState::Stopped)
            .await;
        let temporary = match self.children.get_mut(key) {
            Some(c) => {
                c.set_reason("terminated");
                c.spec.restart == RestartType::Temporary
            }
            None => false,
        };
        if temporary {
            self.forget(key);
        }
        Ok(())
    }

    /// `delete_child`: forgets a child that is not running nor waiting for a restart.
    pub(crate) fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self
            .children
            .key_of(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        match self.children.get(key) {
            Some(c) if c.is_running() => Err(SupervisorError::StillRunning(id.to_owned())),
            Some(c) if c.pending.is_some() => Err(SupervisorError::Restarting(id.to_owned())),
            _ => {
                self.forget(key);
                Ok(())
            }
        }
    }

    /// `get_childspec`.
    pub(crate) fn childspec(&self, id: &str) -> Result<ChildSpec, SupervisorError> {
        self.children
            .key_of(id)
            .and_then(|k| self.children.get(k))
            .map(|c| c.spec.clone())
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))
    }

    /// Removes a child (down) from the table and, for a kernel, from the registry.
    pub(crate) fn forget(&mut self, key: Key) {
        if let Some(c) = self.children.remove(key) {
            if let Some(name) = c.kernel_name() {
                let ours = self
                    .system
                    .registry
                    .get(name)
                    .is_some_and(|e| e.supervisor.get_id() == self.myself.get_id());
                if ours {
                    self.system.registry.remove(name);
                }
            }
        }
    }

    /// The handle of a running nested supervisor.
    pub(crate) fn child_supervisor(&self, id: &str) -> Result<SupervisorHandle, SupervisorError> {
        let c = self
            .children
            .key_of(id)
            .and_then(|k| self.children.get(k))
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        match &c.run {
            Incarnation::Supervisor(h) => Ok(h.clone()),
            Incarnation::Kernel(_) => Err(SupervisorError::NoSuchChild(format!(
                "{id} (a kernel, not a supervisor)"
            ))),
            Incarnation::Down => Err(SupervisorError::NotRunning(id.to_owned())),
        }
    }
}
