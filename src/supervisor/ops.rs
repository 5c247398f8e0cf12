//! Starting and stopping single children, and the calls that add, stop and remove them
//! (OTP's `start_child`, `terminate_child`, `delete_child`).

use super::actor::Sup;
use super::children::{Incarnation, Key};
use super::handle::{spawn, SupervisorHandle};
use super::in_place::InPlace;
use super::spec::{ChildKind, ChildSpec, RestartType, Shutdown, Strategy, SupervisorError};
use super::stop::{self, How, Stopped};
use crate::kernel::{self, KernelState};

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

    /// Starts child `key` now. On success it is linked to this supervisor and tracked;
    /// on failure the error says why.
    pub(crate) async fn start(&mut self, key: Key) -> Result<(), String> {
        let Some(child) = self.children.get(key) else {
            return Err(format!("no child with key {key}"));
        };
        let run = match &child.spec.kind {
            ChildKind::Kernel(ks) => {
                // The entry (and status) outlives this child's restarts, and a restart
                // of this supervisor too (same name, same status).
                let entry = match &child.entry {
                    Some(e) => e.clone(),
                    None => self.system.registry.register_spec(ks, self.myself.clone()),
                };
                entry.status.set_state(KernelState::Starting);
                let in_place = self.in_place(key);
                let spawned = kernel::spawn(
                    ks,
                    entry.status.clone(),
                    self.system.clone(),
                    self.myself.clone(),
                    in_place,
                )
                .await;
                if let Some(c) = self.children.get_mut(key) {
                    c.entry = Some(entry.clone());
                }
                let actor = spawned.map_err(|e| e.to_string())?;
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
        Ok(())
    }

    /// Stops child `key` (if it runs) and leaves it in `state`. Its actor is untracked
    /// first, so that its exit, however late, is not taken for a failure.
    pub(crate) async fn stop_child(&mut self, key: Key, how: How, state: KernelState) {
        let old = self.children.set_down(key);
        let Some(c) = self.children.get_mut(key) else {
            return;
        };
        if let Some(e) = &c.entry {
            e.set_actor(None);
        }
        c.pending = None;
        c.set_state(state);
        let shutdown = match how {
            How::Kill => Shutdown::BrutalKill,
            How::Policy => c.spec.shutdown,
        };
        let Some(cell) = old.cell() else {
            return;
        };
        let outcome = stop::stop(&cell, shutdown, "shutdown").await;
        if outcome == Stopped::Abandoned {
            self.shared.count_abandoned();
            let id = self
                .children
                .get(key)
                .map(|c| c.spec.id.as_str())
                .unwrap_or("");
            tracing::error!(
                child = id,
                kill_wait = ?stop::KILL_WAIT,
                "child did not exit after a kill; abandoned"
            );
        }
    }

    /// Stops every running child in reverse start order (graceful shutdown, or the
    /// supervisor failing), leaving them in `state`.
    pub(crate) async fn stop_all(&mut self, state: KernelState, why: &str) {
        for key in self.children.running_reversed() {
            self.stop_child(key, How::Policy, state).await;
            if let Some(c) = self.children.get_mut(key) {
                c.set_reason(why);
            }
        }
        // Children already down (just exited, or waiting for a restart) settle too;
        // those left down on purpose (stopped, failed) keep their state.
        for key in self.children.keys() {
            if let Some(c) = self.children.get_mut(key) {
                c.pending = None;
                if !matches!(c.state(), KernelState::Stopped | KernelState::Failed) {
                    c.set_state(state);
                }
            }
        }
    }

    /// `start_child`: adds a child at the end of the start order and starts it. A child
    /// that fails to start is not kept.
    pub(crate) async fn add_child(&mut self, spec: ChildSpec) -> Result<(), SupervisorError> {
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
        let id = spec.id.clone();
        let key = self.children.insert(spec);
        match self.start(key).await {
            Ok(()) => Ok(()),
            Err(reason) => {
                self.forget(key);
                Err(SupervisorError::StartFailed { id, reason })
            }
        }
    }

    /// `terminate_child`: stops a child by its shutdown policy; it stays down (state
    /// `stopped`) until restarted, and keeps its spec.
    pub(crate) async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self
            .children
            .key_of(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        self.stop_child(key, How::Policy, KernelState::Stopped)
            .await;
        if let Some(c) = self.children.get_mut(key) {
            c.set_reason("terminated");
        }
        Ok(())
    }

    /// `delete_child`: forgets a child that is not running.
    pub(crate) fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self
            .children
            .key_of(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_owned()))?;
        if self.children.get(key).is_some_and(|c| c.is_running()) {
            return Err(SupervisorError::StillRunning(id.to_owned()));
        }
        self.forget(key);
        Ok(())
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
