//! Starting the whole tree of `grace serve`: playbooks and dispatcher, the system
//! supervisor with its kernels and triggers, the user's kernels, the heartbeat ticker
//! and monitor.

use std::collections::HashMap;
use std::sync::Arc;

use super::heartbeat::{spawn_heartbeat, HeartbeatHandle};
use crate::bus::MessageBusKernel;
use crate::config::ConfigError;
use crate::diagnostics::CodingAgentKernel;
use crate::incident::IncidentLogKernel;
use crate::kernel::KernelSpec;
use crate::playbook::{load_playbooks_with, ActionRegistry, Dispatcher, SelfHealingKernel};
use crate::supervisor::{ChildSpec, SupervisorError, SupervisorExit, SupervisorHandle};
use crate::tree::System;

use super::build::{self, factory, SystemParts, SYSTEM_KERNELS};

/// Why the tree could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration or a playbook is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A supervisor or kernel failed to start.
    #[error("the supervision tree failed to start: {0}")]
    Supervisor(#[from] SupervisorError),
}

/// What a library user adds to the tree.
#[derive(Default)]
pub struct Extensions {
    /// Actions besides the built-ins.
    pub actions: Option<ActionRegistry>,
    /// Triggers besides the built-ins.
    pub triggers: Vec<KernelSpec>,
    /// A last child of the root (serve puts `http` here).
    pub http: Option<ChildSpec>,
}

/// A running tree.
pub struct Tree {
    /// The root supervisor.
    pub root: SupervisorHandle,
    /// The playbook dispatcher.
    pub dispatcher: Arc<Dispatcher>,
    heartbeat: HeartbeatHandle,
    kind_of: Arc<HashMap<String, &'static str>>,
    /// The longest its graceful shutdown can take (`None`: unbounded).
    pub shutdown_bound: Option<std::time::Duration>,
}

impl Tree {
    /// Starts the tree over `system`.
    pub async fn start(system: &Arc<System>, ext: Extensions) -> Result<Tree, StartError> {
        let cfg = &system.config;
        let actions = ext.actions.unwrap_or_else(ActionRegistry::builtin);
        let playbooks = load_playbooks_with(cfg.playbooks.dir.as_deref(), &actions)?;
        let dispatcher = Dispatcher::with_budget(
            playbooks,
            actions,
            cfg.playbooks.max_concurrent,
            cfg.playbooks.disruption_budget,
        );
        let parts = SystemParts {
            message_bus: factory(MessageBusKernel::default),
            incident_log: factory(IncidentLogKernel::default),
            self_healing: SelfHealingKernel::factory(dispatcher.clone()),
            coding_agent: factory(CodingAgentKernel::default),
            triggers: crate::trigger::triggers_supervisor_with(system, &cfg.triggers, ext.triggers),
        };
        let mut kind_of: HashMap<String, &'static str> = SYSTEM_KERNELS
            .iter()
            .map(|n| ((*n).to_owned(), "system"))
            .collect();
        kind_of.insert("http".to_owned(), "system");
        for c in &parts.triggers.children {
            kind_of.insert(c.id.clone(), "trigger");
        }
        let kinds = |k: &crate::config::KernelConfig| crate::kernel::resolve_kind(k);
        let spec = build::root(
            build::system_supervisor(cfg, parts),
            build::kernels_supervisor(cfg, &kinds)?,
            ext.http,
        );
        let shutdown_bound = crate::supervisor::shutdown_bound(&spec);
        let root = SupervisorHandle::start(spec, system.clone()).await?;
        let heartbeat = spawn_heartbeat(system.clone(), cfg.heartbeat.clone());
        tracing::info!(kernels = system.registry.len(), "supervision tree started");
        // The triggers run now, so the conditions of incidents an earlier serve left
        // open can be checked again.
        dispatcher.resume(system);
        Ok(Tree {
            kind_of: Arc::new(kind_of),
            shutdown_bound,
            root,
            dispatcher,
            heartbeat,
        })
    }

    /// The kind of a registered actor (`system`, `trigger` or `kernel`), for
    /// `actor_metrics`.
    pub fn kind_of(&self) -> Arc<dyn Fn(&str) -> &'static str + Send + Sync> {
        let map = self.kind_of.clone();
        Arc::new(move |name| map.get(name).copied().unwrap_or("kernel"))
    }

    /// Waits until the root supervisor exits on its own.
    pub async fn wait(&self) -> SupervisorExit {
        self.root.wait().await
    }

    /// Stops everything in reverse start order within `bound`.
    pub async fn shutdown(self, bound: std::time::Duration) -> SupervisorExit {
        self.heartbeat.stop();
        match self.root.shutdown(bound).await {
            Ok(exit) => exit,
            Err(e) => SupervisorExit::Failed(e.to_string()),
        }
    }
}
