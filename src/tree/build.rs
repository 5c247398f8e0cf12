//! Builds the supervision tree of DESIGN.md from the configuration: the `system`
//! supervisor with its critical kernels and the triggers, the user's `kernels`, and
//! `http`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{heartbeat_of, Config, ConfigError, KernelConfig};
use crate::kernel::{Isolation, KernelFactory, KernelSpec, DEFAULT_START_TIMEOUT};
use crate::supervisor::{AutoShutdown, ChildSpec, RestartType, Shutdown, Strategy, SupervisorSpec};

/// Makes a kernel's factory from its `[[kernel]]` entry; returns the isolation the kind
/// imposes (exec kernels are processes), if any.
pub type KindResolver =
    dyn Fn(&KernelConfig) -> Result<(KernelFactory, Option<Isolation>), ConfigError>;

/// The names of the system kernels, in start order.
pub const SYSTEM_KERNELS: [&str; 4] = [
    "message_bus",
    "incident_log",
    "self_healing",
    "coding_agent",
];

/// A critical system kernel's spec with the configured critical heartbeat.
pub fn system_kernel(cfg: &Config, name: &str, factory: KernelFactory) -> ChildSpec {
    let hb = &cfg.heartbeat;
    ChildSpec::kernel(
        KernelSpec::new(name, factory)
            .critical()
            .heartbeat(hb.critical_interval, hb.critical_timeout),
    )
}

/// The spec of one user kernel.
pub fn user_kernel(
    cfg: &Config,
    k: &KernelConfig,
    kinds: &KindResolver,
) -> Result<ChildSpec, ConfigError> {
    let (factory, forced) = kinds(k)?;
    let (interval, timeout) = heartbeat_of(cfg, k);
    let mut spec = KernelSpec::new(k.name.clone(), factory)
        .heartbeat(interval, timeout)
        .isolation(forced.or(k.isolation).unwrap_or_default())
        .restart_in_place(k.restart_in_place)
        .sandbox(k.sandbox)
        .start_timeout(k.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT));
    spec.critical = k.critical;
    let mut child = ChildSpec::kernel(spec)
        .restart(k.restart)
        .significant(k.significant);
    child.shutdown = if k.brutal_kill {
        Shutdown::BrutalKill
    } else {
        Shutdown::Timeout(k.shutdown_timeout.unwrap_or(Duration::from_secs(5)))
    };
    child.backoff = k.backoff.or(cfg.kernels.backoff);
    child.attempts = k.attempts.or(cfg.kernels.attempts);
    Ok(child)
}

/// The `kernels` supervisor.
pub fn kernels_supervisor(
    cfg: &Config,
    kinds: &KindResolver,
) -> Result<SupervisorSpec, ConfigError> {
    let mut sup = SupervisorSpec::new("kernels", cfg.kernels.strategy)
        .intensity(cfg.kernels.max_restarts, cfg.kernels.max_window)
        .auto_shutdown(cfg.kernels.auto_shutdown);
    for k in &cfg.kernel {
        sup = sup.child(user_kernel(cfg, k, kinds)?);
    }
    Ok(sup)
}

/// The `system` supervisor: rest_for_one over the critical kernels (later ones use
/// earlier ones), then the triggers.
pub fn system_supervisor(cfg: &Config, parts: SystemParts) -> SupervisorSpec {
    let mut sup =
        SupervisorSpec::new("system", Strategy::RestForOne).intensity(20, Duration::from_secs(30));
    for (name, factory) in SYSTEM_KERNELS.iter().zip([
        parts.message_bus,
        parts.incident_log,
        parts.self_healing,
        parts.coding_agent,
    ]) {
        sup = sup.child(system_kernel(cfg, name, factory));
    }
    sup.child(ChildSpec::supervisor(parts.triggers))
}

/// The factories of the system parts.
pub struct SystemParts {
    /// `message_bus`.
    pub message_bus: KernelFactory,
    /// `incident_log`.
    pub incident_log: KernelFactory,
    /// `self_healing`.
    pub self_healing: KernelFactory,
    /// `coding_agent`.
    pub coding_agent: KernelFactory,
    /// The `triggers` supervisor.
    pub triggers: SupervisorSpec,
}

/// The root: one_for_one over `system`, `kernels` and `http`.
///
/// When the `kernels` supervisor ends with its significant kernels (`auto_shutdown`),
/// so does the root, and serve with it: the `kernels` supervisor is then a transient,
/// significant child of a root with `auto_shutdown = any_significant`.
pub fn root(
    system: SupervisorSpec,
    kernels: SupervisorSpec,
    http: Option<ChildSpec>,
) -> SupervisorSpec {
    let ends = kernels.auto_shutdown != AutoShutdown::Never;
    let kernels = ChildSpec::supervisor(kernels);
    let kernels = if ends {
        kernels.restart(RestartType::Transient).significant(true)
    } else {
        kernels
    };
    let mut root = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::supervisor(system))
        .child(kernels);
    if ends {
        root = root.auto_shutdown(AutoShutdown::AnySignificant);
    }
    if let Some(h) = http {
        root = root.child(h);
    }
    root
}

/// A factory from a closure making a kernel value.
pub fn factory<K: crate::kernel::Kernel, F: Fn() -> K + Send + Sync + 'static>(
    f: F,
) -> KernelFactory {
    Arc::new(move || Box::new(f()))
}
