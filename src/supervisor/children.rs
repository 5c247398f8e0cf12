//! The children of one supervisor: their specs and runtime records, kept in start order
//! with O(log n) lookup by id and by current actor, so that a supervisor of 100,000
//! children handles one child's exit without scanning the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{ActorCell, ActorId, ActorRef};
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::backoff::BackoffState;
use super::handle::SupervisorHandle;
use super::in_place::SharedWindow;
use super::spec::{ChildInfo, ChildKind, ChildSpec, Counts};
use super::strategy::{ChildView, Run};
use crate::kernel::{KernelMsg, KernelState, KernelStatus};
use crate::tree::KernelEntry;

/// Position of a child in start order; stable for the child's lifetime.
pub(crate) type Key = u64;

/// The running incarnation of a child, if any.
pub(crate) enum Incarnation {
    /// Not running.
    Down,
    /// A kernel's actor.
    Kernel(ActorRef<KernelMsg>),
    /// A nested supervisor.
    Supervisor(SupervisorHandle),
}

impl Incarnation {
    pub(crate) fn cell(&self) -> Option<ActorCell> {
        match self {
            Incarnation::Down => None,
            Incarnation::Kernel(a) => Some(a.get_cell()),
            Incarnation::Supervisor(h) => Some(h.actor().get_cell()),
        }
    }
}

/// A restart that has been decided but not carried out yet (backoff, or a group being
/// started in order).
pub(crate) struct Pending {
    /// Why the child is restarted.
    pub reason: String,
    /// When its exit was seen (for the latency of the restart event).
    pub since: Instant,
    /// When the delayed start is due; stale timers (earlier than this) are ignored.
    pub due: Instant,
    /// For the child whose failure decided the restart: the whole group to start, in
    /// order, when the delay has elapsed. For a start to be tried again: the rest of its
    /// group, still waiting.
    pub group: Vec<Key>,
    /// A start that failed, to be tried again (`TryAgain` queued), not a backoff.
    pub retry: bool,
}

/// One child.
pub(crate) struct Child {
    pub spec: ChildSpec,
    /// The kernel's registry entry and shared status (kernels only, once started); the
    /// same across restarts.
    pub entry: Option<Arc<KernelEntry>>,
    pub run: Incarnation,
    /// The state of a supervisor child (kernels keep theirs in `status`).
    state: KernelState,
    /// Restarts of a supervisor child (kernels count in `status`).
    restarts: u64,
    /// The last exit or restart reason of a supervisor child (kernels keep theirs in
    /// `status`).
    last_reason: Option<String>,
    pub backoff: Option<BackoffState>,
    pub attempts: Option<SharedWindow>,
    pub pending: Option<Pending>,
}

impl Child {
    fn new(spec: ChildSpec) -> Child {
        let attempts = spec
            .attempts
            .map(|a| SharedWindow::new(a.max_attempts, a.cooldown));
        let backoff = spec.backoff.map(|_| BackoffState::default());
        Child {
            spec,
            entry: None,
            run: Incarnation::Down,
            state: KernelState::Starting,
            restarts: 0,
            last_reason: None,
            backoff,
            attempts,
            pending: None,
        }
    }

    /// The kernel's shared status (kernels only, once started).
    pub fn status(&self) -> Option<&Arc<KernelStatus>> {
        self.entry.as_ref().map(|e| &e.status)
    }

    /// Whether it runs now.
    pub fn is_running(&self) -> bool {
        !matches!(self.run, Incarnation::Down)
    }

    /// Its state as introspection shows it.
    pub fn state(&self) -> KernelState {
        match self.status() {
            Some(s) => s.state(),
            None => self.state,
        }
    }

    /// Sets its state (in the kernel's shared status for kernels).
    pub fn set_state(&mut self, s: KernelState) {
        self.state = s;
        if let Some(status) = self.status() {
            status.set_state(s);
        }
    }

    /// Counts a restart with its reason.
    pub fn record_restart(&mut self, reason: &str) {
        match self.status() {
            Some(s) => s.record_restart(reason),
            None => {
                self.restarts += 1;
                self.last_reason = Some(reason.to_owned());
            }
        }
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u64 {
        match self.status() {
            Some(s) => s.restarts(),
            None => self.restarts,
        }
    }

    /// Records why it went down, without counting a restart.
    pub fn set_reason(&mut self, reason: &str) {
        match self.status() {
            Some(s) => s.set_reason(reason),
            None => self.last_reason = Some(reason.to_owned()),
        }
    }

    /// What the strategy needs to know of it.
    pub fn view(&self) -> ChildView {
        let run = if self.is_running() {
            Run::Running
        } else if self.pending.is_some() {
            Run::Pending
        } else {
            Run::Down
        };
        ChildView {
            restart: self.spec.restart,
            run,
        }
    }

    /// The kernel's name (its key in the registry), for kernels.
    pub fn kernel_name(&self) -> Option<&str> {
        match &self.spec.kind {
            ChildKind::Kernel(k) => Some(&k.name),
            ChildKind::Supervisor(_) => None,
        }
    }

    /// Whether it is a kernel.
    pub fn is_kernel(&self) -> bool {
        matches!(self.spec.kind, ChildKind::Kernel(_))
    }

    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            kind: if self.is_kernel() {
                "kernel"
            } else {
                "supervisor"
            },
            restart: self.spec.restart,
            state: self.state(),
            restarts: self.restarts(),
            last_reason: match self.status() {
                Some(s) => s.last_reason(),
                None => self.last_reason.clone(),
            },
        }
    }
}

/// The children of one supervisor, in start order.
#[derive(Default)]
pub(crate) struct Children {
    map: BTreeMap<Key, Child>,
    by_id: FxHashMap<String, Key>,
    by_actor: FxHashMap<ActorId, Key>,
    next: Key,
}

impl Children {
    /// Adds a child at the end of the start order.
    pub fn insert(&mut self, spec: ChildSpec) -> Key {
        let key = self.next;
        self.next += 1;
        self.by_id.insert(spec.id.clone(), key);
        self.map.insert(key, Child::new(spec));
        key
    }

    /// Forgets a child (which must be down).
    pub fn remove(&mut self, key: Key) -> Option<Child> {
        let child = self.map.remove(&key)?;
        self.by_id.remove(&child.spec.id);
        if let Some(cell) = child.run.cell() {
            self.by_actor.remove(&cell.get_id());
        }
        Some(child)
    }

    pub fn get(&self, key: Key) -> Option<&Child> {
        self.map.get(&key)
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut Child> {
        self.map.get_mut(&key)
    }

    /// The key of the child with this id.
    pub fn key_of(&self, id: &str) -> Option<Key> {
        self.by_id.get(id).copied()
    }

    /// The key of the child whose current incarnation is this actor. Actors of earlier
    /// incarnations (stopped, killed, abandoned) are not found: their late exits are
    /// ignored.
    pub fn key_of_actor(&self, id: ActorId) -> Option<Key> {
        self.by_actor.get(&id).copied()
    }

    /// Records a new running incarnation.
    pub fn set_running(&mut self, key: Key, run: Incarnation) {
        if let Some(cell) = run.cell() {
            self.by_actor.insert(cell.get_id(), key);
        }
        if let Some(child) = self.map.get_mut(&key) {
            if let Some(old) = std::mem::replace(&mut child.run, run).cell() {
                self.by_actor.remove(&old.get_id());
            }
        }
    }

    /// Marks a child down and stops tracking its actor; returns the incarnation it had.
    pub fn set_down(&mut self, key: Key) -> Incarnation {
        let Some(child) = self.map.get_mut(&key) else {
            return Incarnation::Down;
        };
        let old = std::mem::replace(&mut child.run, Incarnation::Down);
        if let Some(cell) = old.cell() {
            self.by_actor.remove(&cell.get_id());
        }
        old
    }

    /// Keys in start order.
    pub fn keys(&self) -> Vec<Key> {
        self.map.keys().copied().collect()
    }

    /// Keys of running children, in reverse start order.
    pub fn running_reversed(&self) -> Vec<Key> {
        self.map
            .iter()
            .rev()
            .filter(|(_, c)| c.is_running())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Views of the children from `from` on (start order).
    pub fn views_from(&self, from: Key) -> impl Iterator<Item = (Key, ChildView)> + '_ {
        self.map.range(from..).map(|(k, c)| (*k, c.view()))
    }

    /// Views of every child (start order).
    pub fn views(&self) -> impl Iterator<Item = (Key, ChildView)> + '_ {
        self.map.iter().map(|(k, c)| (*k, c.view()))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `which_children`.
    pub fn infos(&self) -> Vec<ChildInfo> {
        self.map.values().map(Child::info).collect()
    }

    /// `count_children`.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            specs: self.map.len(),
            ..Counts::default()
        };
        for child in self.map.values() {
            if child.is_running() {
                c.active += 1;
            }
            if child.is_kernel() {
                c.workers += 1;
            } else {
                c.supervisors += 1;
            }
        }
        c
    }
}
