//! The services shared by every part of a running tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::bus::Bus;
use crate::config::Config;
use crate::state::StatePaths;

use super::registry::Registry;

/// What every kernel, trigger, playbook action and HTTP handler can reach. State that
/// must outlive an actor's restart lives here (or in files), never inside the actor.
pub struct System {
    /// The event bus.
    pub bus: Bus,
    /// Kernels by name.
    pub registry: Registry,
    /// Where files go.
    pub paths: StatePaths,
    /// The loaded configuration.
    pub config: Arc<Config>,
    emergency: AtomicBool,
}

impl System {
    /// A system with an empty registry and a fresh bus.
    pub fn new(config: Arc<Config>, paths: StatePaths) -> Arc<System> {
        Arc::new(System {
            bus: Bus::default(),
            registry: Registry::default(),
            paths,
            config,
            emergency: AtomicBool::new(false),
        })
    }

    /// Whether emergency mode is on (set by the emergency playbook).
    pub fn emergency(&self) -> bool {
        self.emergency.load(Ordering::Acquire)
    }

    /// Turns emergency mode on or off; returns the previous value.
    pub fn set_emergency(&self, on: bool) -> bool {
        self.emergency.swap(on, Ordering::AcqRel)
    }
}
