//! The fault-injection endpoints of the chaos harness (`POST /api/chaos/...`), present
//! only when `[chaos] enabled = true`: kernel faults, error bursts, added latency.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::api::{known_kernel, tree_error};
use super::error::ApiError;
use super::server::AppState;
use crate::bus::Topic;
use crate::kernel::Fault;

/// The longest CPU spin or added latency accepted, milliseconds.
pub const MAX_MS: u64 = 60_000;
/// The largest error burst accepted.
pub const MAX_BURST: u32 = 10_000;
/// The longest added-latency period accepted, seconds.
pub const MAX_LATENCY_S: f64 = 3_600.0;

/// Parses an optional JSON body (empty means `{}`), answering 400 with the reason.
fn body<T: DeserializeOwned>(bytes: &Bytes, shape: &str) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}"), format!("send {shape}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    ms: Option<u64>,
    message: Option<String>,
}

/// The fault a path names, validated against its body.
pub fn fault_of(
    kind: &str,
    ms: Option<u64>,
    message: Option<String>,
) -> Result<Option<Fault>, ApiError> {
    match kind {
        "panic" => Ok(Some(Fault::Panic)),
        "hang" => Ok(Some(Fault::Hang)),
        "error" => Ok(Some(Fault::Error(
            message.unwrap_or_else(|| "injected error".to_owned()),
        ))),
        "spin" => match ms {
            Some(ms) if (1..=MAX_MS).contains(&ms) => {
                Ok(Some(Fault::Spin(Duration::from_millis(ms))))
            }
            _ => Err(ApiError::bad_request(
                "spin needs {\"ms\": N}",
                format!("N is the CPU spin in milliseconds, 1 to {MAX_MS}"),
            )),
        },
        "kill" => Ok(None),
        other => Err(ApiError::not_found(
            format!("no fault {other:?}"),
            "faults are panic, hang, spin, error and kill",
        )),
    }
}

/// `POST /api/chaos/kernels/{name}/{fault}`.
pub(crate) async fn post_fault(
    State(st): State<Arc<AppState>>,
    Path((name, kind)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: FaultBody = body(
        &bytes,
        "{\"ms\": N} for spin, optionally {\"message\": \"...\"} for error",
    )?;
    let fault = fault_of(&kind, b.ms, b.message)?;
    known_kernel(&st, &name)?;
    let injected_at = crate::time::rfc3339(crate::time::now());
    tracing::warn!(kernel = %name, fault = %kind, "chaos: injecting fault");
    match fault {
        Some(f) => st.system.registry.inject(&name, f).map_err(tree_error)?,
        None => st
            .system
            .registry
            .stop(&name, st.cfg.restart_timeout)
            .await
            .map_err(tree_error)?,
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "kernel": name, "fault": kind, "injected_at": injected_at })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstBody {
    count: u32,
    component: Option<String>,
    message: Option<String>,
}

/// `POST /api/chaos/errors` `{"count": N, "component"?: "...", "message"?: "..."}`:
/// publishes N `kernel.error` events.
pub(crate) async fn post_errors(
    State(st): State<Arc<AppState>>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let shape = "{\"count\": N, \"component\": \"name\", \"message\": \"text\"}";
    let b: BurstBody = body(&bytes, shape)?;
    if !(1..=MAX_BURST).contains(&b.count) {
        return Err(ApiError::bad_request(
            format!("count {} is out of range", b.count),
            format!("count is 1 to {MAX_BURST}"),
        ));
    }
    let component = b.component.unwrap_or_else(|| "chaos".to_owned());
    if !super::api::valid_name(&component) {
        return Err(ApiError::bad_request(
            format!("{component:?} is not a component name"),
            "component names are 1 to 64 letters, digits, '_', '-' or '.'",
        ));
    }
    let message = b
        .message
        .unwrap_or_else(|| "injected error burst".to_owned());
    tracing::warn!(count = b.count, %component, "chaos: error burst");
    let published = (0..b.count)
        .filter(|_| {
            st.system.bus.emit(
                Topic::KernelError,
                Some(&component),
                json!({ "error": message, "source": "chaos" }),
            )
        })
        .count();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "published": published,
            "overflow": b.count as usize - published,
            "component": component,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    ms: u64,
    duration_s: f64,
}

/// `POST /api/chaos/latency` `{"ms": N, "duration_s": D}`: adds N ms to every API and
/// dashboard answer for D seconds (`ms` 0 stops it).
pub(crate) async fn post_latency(
    State(st): State<Arc<AppState>>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: LatencyBody = body(&bytes, "{\"ms\": N, \"duration_s\": D}")?;
    if b.ms > MAX_MS || !(0.0..=MAX_LATENCY_S).contains(&b.duration_s) {
        return Err(ApiError::bad_request(
            format!("ms {} or duration_s {} is out of range", b.ms, b.duration_s),
            format!("ms is 0 to {MAX_MS}; duration_s is 0 to {MAX_LATENCY_S}"),
        ));
    }
    let delay = Duration::from_millis(b.ms);
    let duration = Duration::from_secs_f64(b.duration_s);
    st.stats.added_latency().set(delay, duration);
    tracing::warn!(
        ms = b.ms,
        duration_s = b.duration_s,
        "chaos: added API latency"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "ms": b.ms, "duration_s": b.duration_s })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_validated() {
        assert_eq!(
            fault_of("panic", None, None).expect("ok"),
            Some(Fault::Panic)
        );
        assert_eq!(fault_of("kill", None, None).expect("ok"), None);
        assert_eq!(
            fault_of("spin", Some(5), None).expect("ok"),
            Some(Fault::Spin(Duration::from_millis(5)))
        );
        assert_eq!(
            fault_of("spin", None, None).expect_err("no ms").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            fault_of("spin", Some(MAX_MS + 1), None)
                .expect_err("big")
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            fault_of("melt", None, None).expect_err("unknown").status,
            StatusCode::NOT_FOUND
        );
    }
}
