//! The read endpoints (`/health`, `/ready`, `/operator/dashboard`, `/metrics`, `/api/kernels`,
//! `/api/incidents`, `/api/timeline`, `/`) and the operator's kernel restart.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::server::AppState;
use super::{dashboard, exposition, health, metrics};
use crate::incident::Incident;
use crate::supervisor::SupervisorError;
use crate::tree::TreeError;

/// The operator page.
const PAGE: &str = include_str!("dashboard.html");
/// Incidents `/api/incidents` returns when no limit is given.
const DEFAULT_LIMIT: usize = 100;
/// Kernels the dashboard JSON lists at most (all of them are on `/api/kernels`).
const DASHBOARD_KERNELS: usize = 500;
/// The largest limit accepted.
const MAX_LIMIT: usize = 10_000;

/// Whether `name` can be a kernel name: 1 to 64 ASCII letters, digits, `_`, `-`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks a kernel name from a path: 400 when malformed, 404 when unknown.
pub(crate) fn known_kernel(st: &AppState, name: &str) -> Result<(), ApiError> {
    if !valid_name(name) {
        return Err(ApiError::bad_request(
            format!("{name:?} is not a kernel name"),
            "kernel names are 1 to 64 letters, digits, '_', '-' or '.'; GET /api/kernels lists them",
        ));
    }
    if st.system.registry.get(name).is_none() {
        return Err(ApiError::not_found(
            format!("no kernel named {name:?}"),
            "GET /api/kernels lists the kernels",
        ));
    }
    Ok(())
}

/// Maps a registry error to an answer.
pub(crate) fn tree_error(e: TreeError) -> ApiError {
    let msg = e.to_string();
    match e {
        TreeError::NoSuchKernel(_) | TreeError::Supervisor(SupervisorError::NoSuchChild(_)) => {
            ApiError::not_found(msg, "GET /api/kernels lists the kernels")
        }
        TreeError::NotRunning(_) => ApiError::new(
            StatusCode::CONFLICT,
            msg,
            "the kernel is down; restart it with POST /api/kernels/{name}/restart",
        ),
        TreeError::Timeout { .. } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            msg,
            "the kernel or its supervisor is busy or hung; GET /health shows its state",
        ),
        TreeError::Supervisor(SupervisorError::NotRunning(_)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            msg,
            "its supervisor is down; the tree is restarting it, try again shortly",
        ),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            msg,
            "see the log (logs/grace.jsonl) for the kernel's failure",
        ),
    }
}

/// The incidents kept in memory (open ones and the recent closed ones), newest first.
fn known_incidents(st: &AppState) -> Vec<Incident> {
    st.system
        .incidents
        .recent(st.system.config.incidents.keep_recent + 1_000)
}

/// The verdict from shared state only: kernel statuses (atomics) and the incident
/// store's open incidents (in memory).
fn health_report(st: &AppState) -> health::HealthReport {
    health::assess(
        &st.system.registry.statuses(),
        &st.system.incidents.open_incidents(),
        health::Context {
            timestamp: crate::time::rfc3339(crate::time::now()),
            uptime_s: st.started.elapsed().as_secs_f64(),
            emergency: st.system.emergency(),
            durability_error: st.system.incidents.durability_error(),
        },
    )
}

/// `GET /health`: liveness. 200 whenever serve answers (the watchdog restarts serve on
/// anything else, and restarting serve does not bring a kernel back); the verdict is in
/// the body.
pub(crate) async fn get_health(State(st): State<Arc<AppState>>) -> Response {
    Json(health_report(&st)).into_response()
}

/// `GET /ready`: readiness, for orchestrators. The body of `/health`, with 200 when
/// healthy and 503 when degraded.
pub(crate) async fn get_ready(State(st): State<Arc<AppState>>) -> Response {
    let report = health_report(&st);
    let code = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

/// `GET /api/kernels`.
pub(crate) async fn get_kernels(State(st): State<Arc<AppState>>) -> Response {
    let rows = dashboard::kernel_rows(&st.system);
    Json(json!({
        "timestamp": crate::time::rfc3339(crate::time::now()),
        "total": rows.len(),
        "kernels": rows,
    }))
    .into_response()
}

/// Query of `GET /api/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentQuery {
    /// Only open (or mitigating) incidents.
    #[serde(default)]
    open: bool,
    /// At most this many, newest first.
    limit: Option<usize>,
}

/// `GET /api/incidents[?open=true][&limit=N]`: newest first, with a summary.
pub(crate) async fn get_incidents(
    State(st): State<Arc<AppState>>,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            format!("limit {limit} is out of range"),
            format!("limit is 1 to {MAX_LIMIT}"),
        ));
    }
    let store = &st.system.incidents;
    let list: Vec<Incident> = if q.open {
        let mut open = store.open_incidents();
        open.reverse();
        open.truncate(limit);
        open
    } else {
        store.recent(limit)
    };
    Ok(Json(json!({ "summary": store.summary(), "incidents": list })).into_response())
}

/// `GET /api/timeline`: restarts and resolved incidents over time, for the chart.
pub(crate) async fn get_timeline(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let all = known_incidents(&st);
    let restarts = st.history.points();
    let points: Vec<_> = all
        .iter()
        .map(|i| {
            json!({
                "incident_id": i.incident_id, "detected_at": i.detected_at,
                "resolved_at": i.resolved_at, "mttr_seconds": i.mttr_seconds,
                "component": i.component, "trigger": i.trigger, "status": i.status,
            })
        })
        .collect();
    Ok(Json(json!({ "restarts": restarts, "incidents": points })).into_response())
}

/// `GET /operator/dashboard`: the seed's operator JSON, from memory and the latest
/// reading ([`super::readings`]).
pub(crate) async fn get_dashboard(State(st): State<Arc<AppState>>) -> Response {
    let all = known_incidents(&st);
    let r = st.readings.latest();
    let actions = st
        .tallies
        .lock()
        .events
        .get("playbook.step")
        .copied()
        .unwrap_or(0);
    let (rows, total) = dashboard::kernel_rows_bounded(&st.system, DASHBOARD_KERNELS);
    let snaps: Vec<_> = rows.iter().map(|r| r.status.clone()).collect();
    let health = health_report(&st);
    let emergency = st.system.emergency();
    let body = json!({
        "timestamp": crate::time::rfc3339(crate::time::now()),
        "system_state": dashboard::system_state(&health, emergency),
        "boot_phase": dashboard::boot_phase(&snaps),
        "emergency": emergency,
        "kernels": {
            "total": health.kernels.total,
            "running": health.kernels.running,
            "failed": health.kernels.failed,
            "degraded": health.kernels.degraded,
            "listed": rows.len(),
            "list_truncated": rows.len() < total,
            "list": rows,
        },
        "triggers": dashboard::triggers(&r.triggers, &all, actions),
        // The dispatcher's counters (runs, successes, failures, rate limited, ...), as
        // the self_healing kernel reports them; null while it does not answer.
        "playbooks": r.playbooks,
        "snapshots": r.snapshots,
        "watchdogs": r.watchdogs,
        "trust": st.system.trust.all(),
        "incidents": dashboard::incidents_section(&st.system, 20),
        "bus": st.system.bus.stats(),
        "api": st.stats.summary(),
        "process": r.process,
        "host": r.host,
        "readings_taken_at": r.taken_at,
        "chaos_enabled": st.system.config.chaos.enabled,
        "health": health,
    });
    Json(body).into_response()
}

/// `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does), else
/// the classic text format.
pub(crate) async fn get_metrics(
    State(st): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let om = exposition::wants_openmetrics(accept);
    let text = metrics::render(&st.registry, om);
    let kind = if om {
        exposition::OPENMETRICS
    } else {
        exposition::CLASSIC
    };
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// `GET /`: the operator page.
pub(crate) async fn get_page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

/// `POST /api/kernels/{name}/restart`: restarts the kernel through its supervisor and
/// answers once it runs again.
pub(crate) async fn post_restart(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    known_kernel(&st, &name)?;
    tracing::info!(kernel = %name, "operator restart requested over http");
    st.system
        .registry
        .restart(&name, "operator", st.cfg.restart_timeout)
        .await
        .map_err(tree_error)?;
    let status = st.system.registry.get(&name).map(|e| e.status.snapshot());
    Ok(Json(json!({ "kernel": name, "restarted": true, "status": status })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_are_validated() {
        for ok in [
            "kv_store",
            "worker-pool",
            "a",
            "trigger.heartbeat",
            &"x".repeat(64),
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a b", "../etc", "a/b", "é", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
