//! The router: which path goes to which handler, and the layers around them.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use super::server::AppState;
use super::{api, chaos, middleware};

/// Builds the router over the shared state. The chaos endpoints exist only when
/// `[chaos] enabled` is set; otherwise their paths answer 404 like any unknown path.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/", get(api::get_page))
        .route("/health", get(api::get_health))
        .route("/ready", get(api::get_ready))
        .route("/operator/dashboard", get(api::get_dashboard))
        .route("/metrics", get(api::get_metrics))
        .route("/api/kernels", get(api::get_kernels))
        .route("/api/incidents", get(api::get_incidents))
        .route("/api/timeline", get(api::get_timeline))
        .route("/api/kernels/{name}/restart", post(api::post_restart));
    if state.system.config.chaos.enabled {
        r = r
            .route("/api/chaos/kernels/{name}/{fault}", post(chaos::post_fault))
            .route("/api/chaos/errors", post(chaos::post_errors))
            .route("/api/chaos/latency", post(chaos::post_latency));
    }
    let limit = state.cfg.body_limit;
    // Layers run outermost last-added: observe → token → body limit → chaos latency.
    r.fallback(middleware::not_found)
        .layer(from_fn_with_state(state.clone(), middleware::added_latency))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(from_fn_with_state(state.clone(), middleware::require_token))
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}
