//! The evidence of a failure, and how it is gathered from a running system: the error,
//! the kernel's restart history, recent incidents, resources, config drift and which
//! dependencies are down.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::DiagnosticsConfig;
use super::resources::{sample, ResourceSample};
use crate::incident::Incident;
use crate::kernel::KernelState;
use crate::tree::System;

/// What a diagnostic task is asked (the arguments of the `diagnose` request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseRequest {
    /// The failing component (a kernel name, `serve`, `host`, ...).
    pub component: String,
    /// The incident being diagnosed, if any.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// The error or panic message, if the caller has it.
    #[serde(default)]
    pub error: Option<String>,
    /// Kernels the component depends on, beyond the critical ones (optional).
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// The component's kernel as the registry shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelEvidence {
    /// Its state (`running`, `degraded`, `restarting`, `failed`, ...).
    pub state: String,
    /// Whether it is critical.
    pub critical: bool,
    /// Restarts since the tree started.
    pub restarts: u64,
    /// The reason of the last restart or failure.
    pub last_reason: Option<String>,
    /// Age of its heartbeat, ms.
    pub heartbeat_age_ms: u64,
}

/// One incident, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvidence {
    /// Its id.
    pub incident_id: String,
    /// Its trigger.
    pub trigger: String,
    /// Its failure mode.
    pub failure_mode: String,
    /// Its component.
    pub component: String,
    /// Its status.
    pub status: String,
    /// When it was detected.
    pub detected_at: String,
    /// How often it fired while open.
    pub occurrences: u64,
    /// Its summary.
    pub summary: String,
}

impl From<&Incident> for IncidentEvidence {
    fn from(i: &Incident) -> Self {
        IncidentEvidence {
            incident_id: i.incident_id.clone(),
            trigger: i.trigger.clone(),
            failure_mode: i.failure_mode.clone(),
            component: i.component.clone(),
            status: i.status.to_string(),
            detected_at: i.detected_at.clone(),
            occurrences: i.occurrences,
            summary: i.summary.clone(),
        }
    }
}

/// A dependency that is not up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyDown {
    /// The kernel.
    pub name: String,
    /// Its state (None: no kernel of that name is registered).
    pub state: Option<String>,
    /// Whether it is critical.
    pub critical: bool,
    /// Why it went down, if known.
    pub last_reason: Option<String>,
}

/// The limits above which a resource counts as exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// CPU, percent.
    pub cpu_percent: f64,
    /// Memory, percent.
    pub memory_percent: f64,
    /// Disk, percent.
    pub disk_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        let c = DiagnosticsConfig::default();
        Thresholds {
            cpu_percent: c.cpu_percent,
            memory_percent: c.memory_percent,
            disk_percent: c.disk_percent,
        }
    }
}

/// Everything known about a failure when it is diagnosed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The failing component.
    pub component: String,
    /// The incident, if any.
    pub incident_id: Option<String>,
    /// The error or panic message.
    pub error: Option<String>,
    /// The component's kernel (None if it is not a kernel).
    pub kernel: Option<KernelEvidence>,
    /// Recent incidents of the component, newest first.
    pub incidents: Vec<IncidentEvidence>,
    /// Resources at the time of the diagnosis.
    pub resources: ResourceSample,
    /// The limits the resources are judged by.
    pub thresholds: Thresholds,
    /// Config drift detected recently (any component).
    pub drift: Vec<IncidentEvidence>,
    /// Dependencies (critical kernels and named ones) that are not up.
    pub dependencies_down: Vec<DependencyDown>,
}

fn state_name(s: KernelState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn within(at: &str, since: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(at).is_ok_and(|t| t.with_timezone(&Utc) >= since)
}

fn error_of(i: &Incident) -> Option<String> {
    let d = &i.details;
    for key in ["error", "panic", "reason", "message"] {
        if let Some(s) = d.get(key).and_then(|v| v.as_str()) {
            return Some(s.to_owned());
        }
    }
    (!i.summary.is_empty()).then(|| i.summary.clone())
}

/// Gathers the evidence for `req` from `system`. `exclude` names the diagnosing kernel
/// itself, which is never counted as a dependency.
pub async fn gather(
    system: &System,
    req: &DiagnoseRequest,
    config: &DiagnosticsConfig,
    exclude: Option<&str>,
) -> Evidence {
    let dir = system.paths.root().to_path_buf();
    let resources = tokio::task::spawn_blocking(move || sample(&dir))
        .await
        .unwrap_or_default();
    gather_with(system, req, config, exclude, resources)
}

/// [`gather`] with a resource sample taken by the caller.
pub fn gather_with(
    system: &System,
    req: &DiagnoseRequest,
    config: &DiagnosticsConfig,
    exclude: Option<&str>,
    resources: ResourceSample,
) -> Evidence {
    let kernel = system.registry.get(&req.component).map(|e| {
        let s = e.status.snapshot();
        KernelEvidence {
            state: state_name(s.state),
            critical: s.critical,
            restarts: s.restarts,
            last_reason: s.last_reason,
            heartbeat_age_ms: s.heartbeat_age_ms,
        }
    });
    let incident = req
        .incident_id
        .as_deref()
        .and_then(|id| system.incidents.get(id).ok().flatten());
    let error = req
        .error
        .clone()
        .or_else(|| incident.as_ref().and_then(error_of))
        .or_else(|| kernel.as_ref().and_then(|k| k.last_reason.clone()));
    let since = crate::time::now()
        - chrono::Duration::from_std(config.lookback).unwrap_or(chrono::Duration::MAX);
    let incidents = system
        .incidents
        .for_component(&req.component, 10)
        .iter()
        .map(IncidentEvidence::from)
        .collect();
    let drift = system
        .incidents
        .recent(200)
        .iter()
        .filter(|i| {
            (i.trigger == "config_drift" || i.failure_mode.contains("drift"))
                && within(&i.detected_at, since)
        })
        .map(IncidentEvidence::from)
        .collect();
    let mut dependencies_down = Vec::new();
    let mut seen = BTreeSet::new();
    let skip = |n: &str| n == req.component || Some(n) == exclude;
    for s in system.registry.statuses() {
        if s.critical && !s.state().is_up() && !skip(&s.name) && seen.insert(s.name.clone()) {
            dependencies_down.push(DependencyDown {
                name: s.name.clone(),
                state: Some(state_name(s.state())),
                critical: true,
                last_reason: s.last_reason(),
            });
        }
    }
    for name in &req.dependencies {
        if skip(name) || seen.contains(name) {
            continue;
        }
        match system.registry.get(name) {
            Some(e) if e.status.state().is_up() => {}
            Some(e) => {
                seen.insert(name.clone());
                dependencies_down.push(DependencyDown {
                    name: name.clone(),
                    state: Some(state_name(e.status.state())),
                    critical: e.status.critical,
                    last_reason: e.status.last_reason(),
                });
            }
            None => {
                seen.insert(name.clone());
                dependencies_down.push(DependencyDown {
                    name: name.clone(),
                    state: None,
                    critical: false,
                    last_reason: Some("no kernel of that name is registered".to_owned()),
                });
            }
        }
    }
    Evidence {
        component: req.component.clone(),
        incident_id: req.incident_id.clone(),
        error,
        kernel,
        incidents,
        resources,
        thresholds: Thresholds {
            cpu_percent: config.cpu_percent,
            memory_percent: config.memory_percent,
            disk_percent: config.disk_percent,
        },
        drift,
        dependencies_down,
    }
}
