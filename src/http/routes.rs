//! The router: which path goes to which handler, and the layers around them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::health;
use super::server::AppState;

/// Builds the router over the shared state.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(get_health))
        .with_state(state)
}

async fn get_health(State(st): State<Arc<AppState>>) -> Response {
    let snaps: Vec<_> = st
        .system
        .registry
        .statuses()
        .iter()
        .map(|s| s.snapshot())
        .collect();
    let report = health::assess(
        &snaps,
        crate::time::rfc3339(crate::time::now()),
        st.started.elapsed().as_secs_f64(),
        st.system.emergency(),
    );
    let code = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}
