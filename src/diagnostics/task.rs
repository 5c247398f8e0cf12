//! The diagnostic task: gather evidence, classify, apply the safe fixes, write the
//! report, escalate the rest.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::classify::{classify, Fix};
use super::escalate::{post_webhook, run_command};
use super::evidence::{gather, DiagnoseRequest};
use super::fix::{apply, target};
use super::report::{free_path, report_id, DiagnosticReport, Escalation};
use crate::audit::AuditError;
use crate::bus::Topic;
use crate::kernel::KernelStatus;
use crate::tree::System;

/// Why a diagnostic task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnosticsError {
    /// The report could not be written.
    #[error("diagnostic report {path}: {source}; check the state directory's permissions and free space")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The audit record of the task could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Who runs the task.
#[derive(Clone, Default)]
pub struct TaskOptions {
    /// The diagnosing kernel's name: never counted as a dependency nor restarted by the
    /// task (it would be restarting itself).
    pub self_name: Option<String>,
    /// The diagnosing kernel's status: its heartbeat is stamped while the task waits on
    /// fixes and escalation (each bounded by its timeout), so a long but progressing
    /// diagnosis is not taken for a hang.
    pub heartbeat: Option<Arc<KernelStatus>>,
}

async fn alive<F: Future>(status: Option<&KernelStatus>, fut: F) -> F::Output {
    let Some(status) = status else {
        return fut.await;
    };
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => status.beat(),
        }
    }
}

/// Runs one diagnosis of `req` on `system` with the `[diagnostics]` settings, and
/// returns the report (also written under `<state>/diagnostics/`).
pub async fn diagnose(
    system: &Arc<System>,
    req: DiagnoseRequest,
    opts: TaskOptions,
) -> Result<DiagnosticReport, DiagnosticsError> {
    let config = &system.config.diagnostics;
    let beat = opts.heartbeat.as_deref();
    let self_name = opts.self_name.as_deref();
    let now = crate::time::now();
    let evidence = alive(beat, gather(system, &req, config, self_name)).await;
    let diagnosis = classify(&evidence);
    let id = report_id(now, &req.component);
    let dir = system.paths.diagnostics_dir();
    if let Err(source) = std::fs::create_dir_all(&dir) {
        return Err(DiagnosticsError::Io { path: dir, source });
    }
    let path = free_path(&dir, &id);

    let mut applied = Vec::new();
    let mut escalate: Vec<Fix> = Vec::new();
    for fix in &diagnosis.fixes {
        let runnable = fix.safe && config.auto_apply_safe && target(fix) != self_name;
        if !runnable {
            escalate.push(fix.clone());
            continue;
        }
        let outcome = alive(beat, apply(system, fix, config.fix_timeout)).await;
        system.audit.append(
            "diagnostics.fix",
            json!({ "report_id": id, "component": req.component, "fix": outcome }),
        )?;
        if !outcome.ok {
            escalate.push(fix.clone());
        }
        applied.push(outcome);
    }

    let mut report = DiagnosticReport {
        report_id: id.clone(),
        created_at: crate::time::rfc3339(now),
        component: req.component.clone(),
        incident_id: req.incident_id.clone(),
        path: path.clone(),
        evidence,
        diagnosis,
        applied,
        escalation: None,
    };
    let write = |r: &DiagnosticReport| {
        r.write().map_err(|source| DiagnosticsError::Io {
            path: path.clone(),
            source,
        })
    };
    write(&report)?;

    if !escalate.is_empty() {
        let mut channels = Vec::new();
        if let Some(cmd) = &config.escalate_command {
            channels.push(
                alive(
                    beat,
                    run_command(cmd, &report, &path, config.escalate_timeout),
                )
                .await,
            );
        }
        if let Some(url) = &config.escalate_webhook {
            let body = serde_json::to_vec(&report).unwrap_or_default();
            channels.push(alive(beat, post_webhook(url, body, config.escalate_timeout)).await);
        }
        for c in channels.iter().filter(|c| !c.ok) {
            tracing::warn!(channel = %c.channel, detail = %c.detail, report = %path.display(),
                "diagnostics: escalation channel failed");
        }
        let escalation = Escalation {
            at: crate::time::rfc3339(crate::time::now()),
            fixes: escalate,
            channels,
        };
        let payload = json!({
            "incident_id": report.incident_id,
            "component": report.component,
            "report": path,
            "root_cause": report.diagnosis.root_cause,
            "confidence": report.diagnosis.confidence,
            "fixes": escalation.fixes,
            "channels": escalation.channels,
        });
        system
            .bus
            .emit(Topic::IncidentEscalated, Some(&report.component), &payload);
        system.audit.append("diagnostics.escalated", payload)?;
        report.escalation = Some(escalation);
        write(&report)?;
    }
    system.audit.append(
        "diagnostics.report",
        json!({
            "report_id": report.report_id,
            "path": path,
            "component": report.component,
            "incident_id": report.incident_id,
            "root_cause": report.diagnosis.root_cause,
            "confidence": report.diagnosis.confidence,
            "applied": report.applied.len(),
            "escalated": report.escalation.as_ref().map_or(0, |e| e.fixes.len()),
        }),
    )?;
    tracing::info!(
        component = %report.component,
        root_cause = report.diagnosis.root_cause.as_str(),
        confidence = report.diagnosis.confidence,
        report = %path.display(),
        "diagnosis written"
    );
    Ok(report)
}
