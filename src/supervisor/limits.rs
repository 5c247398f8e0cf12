//! What happens at the limits: a child that stays down (its restart type says so, or
//! its attempt limit is exhausted), a supervisor that fails (intensity exceeded), and
//! one that ends with its significant children (`auto_shutdown`).

use ractor::ActorProcessingErr;

use super::actor::Sup;
use super::children::Key;
use super::events::{CriticalDownEvent, MaxAttemptsEvent};
use super::handle::SupervisorExit;
use super::in_place::SharedWindow;
use super::spec::{AutoShutdown, RestartType};
use crate::bus::Topic;
use crate::kernel::KernelState;

impl Sup {
    /// A child that is not to be restarted stays down: a temporary one is forgotten (as
    /// in OTP), any other stays listed as stopped.
    pub(crate) fn stays_down(&mut self, key: Key) {
        let Some(c) = self.children.get_mut(key) else {
            return;
        };
        c.pending = None;
        c.set_state(KernelState::Stopped);
        if c.spec.restart == RestartType::Temporary {
            self.forget(key);
        }
    }

    /// The attempt limit is exhausted: the child is left down (state `failed`), which is
    /// published, and a critical kernel raises `system.critical_kernel_down`. No
    /// escalation.
    pub(crate) fn leave_down(&mut self, key: Key, reason: &str) {
        let Some(c) = self.children.get_mut(key) else {
            return;
        };
        c.pending = None;
        c.set_state(KernelState::Failed);
        c.set_reason(reason);
        let (max_attempts, cooldown) = c
            .attempts
            .as_ref()
            .map(SharedWindow::limits)
            .unwrap_or_default();
        let kernel = c.spec.id.clone();
        let critical = c.status().is_some_and(|s| s.critical);
        tracing::error!(
            kernel = %kernel,
            reason,
            max_attempts,
            ?cooldown,
            critical,
            "restart attempts exhausted; left down"
        );
        let bus = &self.system.bus;
        bus.emit(
            Topic::KernelRestartMaxAttempts,
            Some(&kernel),
            MaxAttemptsEvent {
                kernel: kernel.clone(),
                supervisor: self.name.to_string(),
                reason: reason.to_owned(),
                max_attempts,
                cooldown_s: cooldown.as_secs_f64(),
            },
        );
        if critical {
            bus.emit(
                Topic::SystemCriticalKernelDown,
                Some(&kernel),
                CriticalDownEvent {
                    kernel: kernel.clone(),
                    supervisor: self.name.to_string(),
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// Restart intensity exceeded: stop every child in reverse start order and fail, so
    /// that the parent (if any) sees this supervisor fail.
    pub(crate) async fn escalate(&mut self, key: Key, reason: &str) -> ActorProcessingErr {
        let (max, window) = self.intensity.limits();
        let msg = format!(
            "supervisor {}: restart intensity exceeded ({} restarts within {:?}); last failure: child {}: {}",
            self.name,
            max,
            window,
            self.child_id(key),
            reason
        );
        tracing::error!(reason = %msg, "restart intensity exceeded; stopping children and failing");
        self.stop_all(KernelState::Failed, &msg).await;
        self.shared.set_exit(SupervisorExit::Failed(msg.clone()));
        msg.into()
    }

    /// After a significant child exited by itself and stays down: whether the
    /// supervisor is to end now.
    pub(crate) fn auto_shutdown_due(&self) -> bool {
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .children
                .keys()
                .into_iter()
                .filter_map(|k| self.children.get(k))
                .any(|c| c.spec.significant && (c.is_running() || c.pending.is_some())),
        }
    }

    /// Ends the supervisor with reason `shutdown` (OTP: a normal exit, which a
    /// transient parent does not restart): its other children stop in reverse start
    /// order on the way out.
    pub(crate) fn auto_shutdown(&mut self, child: &str) {
        let why = format!(
            "supervisor {}: significant child {child} ended ({:?})",
            self.name, self.auto_shutdown
        );
        tracing::info!(reason = %why, "auto_shutdown: stopping");
        self.shared.set_exit(SupervisorExit::AutoShutdown(why));
        self.myself.stop(Some("shutdown".to_owned()));
    }

    pub(crate) fn child_id(&self, key: Key) -> String {
        self.children
            .get(key)
            .map(|c| c.spec.id.clone())
            .unwrap_or_default()
    }
}
