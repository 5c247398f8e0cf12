//! Carrying out the safe fixes of a diagnosis through the registry (restart through the
//! kernel's supervisor; shed load and clear caches through the kernel's control hooks).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::classify::{Fix, FixAction};
use super::report::FixOutcome;
use crate::kernel::Control;
use crate::tree::System;

/// The kernel a fix acts on, for fixes that can be applied automatically.
pub fn target(fix: &Fix) -> Option<&str> {
    match &fix.action {
        FixAction::RestartDependency { kernel }
        | FixAction::RestartComponent { kernel }
        | FixAction::ShedLoad { kernel }
        | FixAction::ClearCaches { kernel } => Some(kernel),
        _ => None,
    }
}

async fn run(system: &System, fix: &Fix, timeout: Duration) -> Result<Value, String> {
    let r = &system.registry;
    match &fix.action {
        FixAction::RestartDependency { kernel } => r
            .restart(kernel, "diagnostics: dependency restarted first", timeout)
            .await
            .map(|()| json!({ "restarted": kernel })),
        FixAction::RestartComponent { kernel } => r
            .restart(
                kernel,
                "diagnostics: restarted after its dependencies",
                timeout,
            )
            .await
            .map(|()| json!({ "restarted": kernel })),
        FixAction::ShedLoad { kernel } => r.control(kernel, Control::ShedLoad(true), timeout).await,
        FixAction::ClearCaches { kernel } => r.control(kernel, Control::ClearCaches, timeout).await,
        other => return Err(format!("{other:?} is not applied automatically")),
    }
    .map_err(|e| e.to_string())
}

/// Applies one safe fix, bounded by `timeout`.
pub async fn apply(system: &System, fix: &Fix, timeout: Duration) -> FixOutcome {
    let t0 = Instant::now();
    let r = run(system, fix, timeout).await;
    let duration_ms = t0.elapsed().as_millis() as u64;
    match r {
        Ok(v) => FixOutcome {
            fix: fix.clone(),
            ok: true,
            result: v,
            duration_ms,
        },
        Err(e) => FixOutcome {
            fix: fix.clone(),
            ok: false,
            result: Value::String(e),
            duration_ms,
        },
    }
}
