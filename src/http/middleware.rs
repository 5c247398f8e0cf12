//! The layers around every handler: accounting and request timeout, panic and error
//! shaping (every error answer is JSON `{"error", "hint"}`), the bearer-token check of
//! mutating calls, and chaos latency.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use hyper::body::{Frame, SizeHint};
use parking_lot::Mutex;

use super::error::ApiError;
use super::server::AppState;

/// Largest error body of an inner layer that is quoted in the JSON error.
const QUOTE_LIMIT: usize = 512;

/// Outermost layer: times the request, bounds it by `[http] request_timeout`, turns a
/// handler panic into a 500, rewrites non-JSON error answers as JSON, and records the
/// request for the api_timeout and kpi_threshold triggers
/// ([`crate::trigger::ApiSignals`]) and for `/metrics` ([`super::ApiStats`]).
///
/// Only Grace's own slowness is an API timeout: the handler still running
/// `request_timeout` after the request body was fully read (504). A handler waiting for
/// body bytes the client does not send is answered 408, and a body the client broke off
/// (a disconnect) gets the handler's own 4xx; neither is recorded for the triggers.
pub(crate) async fn observe(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let limit = st.cfg.request_timeout;
    let watch = Arc::new(BodyWatch::default());
    let req = req.map(|b| Body::new(Watched::new(b, watch.clone())));
    let run = AssertUnwindSafe(next.run(req)).catch_unwind();
    let mut run = std::pin::pin!(run);
    let mut deadline = tokio::time::Instant::now() + limit;
    let outcome = loop {
        tokio::select! {
            done = &mut run => break Ok(done),
            () = tokio::time::sleep_until(deadline) => match watch.phase() {
                BodyPhase::AwaitingClient => break Err(Late::Client),
                // The body came in late: the handler gets its whole timeout from then.
                BodyPhase::Received(at) if at + limit > deadline => deadline = at + limit,
                _ => break Err(Late::Handler),
            },
        }
    };
    // What the client caused (a stalled or broken-off body) says nothing about serve.
    let client_caused = matches!(outcome, Err(Late::Client)) || watch.broken();
    let (resp, timed_out) = match outcome {
        Ok(Ok(resp)) => (json_errors(resp).await, false),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, %route, panic = %what, "http handler panicked");
            let e = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
                "this is a bug in grace; the log (logs/grace.jsonl) has the details",
            );
            (e.into_response(), false)
        }
        Err(Late::Client) => {
            tracing::info!(%method, %route, timeout = ?limit, received = watch.received(), "http request body not received in time");
            let e = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body was not received within {} ({} bytes arrived)",
                    humantime::format_duration(limit),
                    watch.received()
                ),
                "send the whole body that Content-Length announces, or raise [http] request_timeout",
            );
            (e.into_response(), false)
        }
        Err(Late::Handler) => {
            tracing::warn!(%method, %route, timeout = ?limit, "http request timed out");
            let e = ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("request timed out after {}", humantime::format_duration(limit)),
                "the server is overloaded or a kernel is not answering; see GET /health, or raise [http] request_timeout",
            );
            (e.into_response(), true)
        }
    };
    let latency = start.elapsed();
    if !client_caused {
        st.system.api.record(latency, timed_out);
    }
    st.stats
        .record(&method, &route, resp.status().as_u16(), latency, timed_out);
    resp
}

/// Why a request ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Late {
    /// The handler was waiting for body bytes the client did not send.
    Client,
    /// The handler itself (with the whole request in hand, or not needing it).
    Handler,
}

/// Where the reading of a request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyPhase {
    /// Not read, or not read to its end, and nobody waiting for it.
    Idle,
    /// The handler waits for bytes from the client.
    AwaitingClient,
    /// Read to its end at this instant.
    Received(tokio::time::Instant),
}

/// What [`Watched`] saw of a request body.
#[derive(Debug)]
struct BodyWatch {
    phase: Mutex<BodyPhase>,
    received: std::sync::atomic::AtomicU64,
    broken: AtomicBool,
}

impl Default for BodyWatch {
    fn default() -> Self {
        BodyWatch {
            phase: Mutex::new(BodyPhase::Idle),
            received: std::sync::atomic::AtomicU64::new(0),
            broken: AtomicBool::new(false),
        }
    }
}

impl BodyWatch {
    fn phase(&self) -> BodyPhase {
        *self.phase.lock()
    }

    fn set(&self, p: BodyPhase) {
        *self.phase.lock() = p;
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Whether reading the body failed (the client went away mid-body).
    fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// A request body that tells its [`BodyWatch`] whether the handler is waiting for the
/// client, and when the body was read to its end.
struct Watched {
    inner: Body,
    watch: Arc<BodyWatch>,
}

impl Watched {
    fn new(inner: Body, watch: Arc<BodyWatch>) -> Watched {
        if hyper::body::Body::is_end_stream(&inner) {
            watch.set(BodyPhase::Received(tokio::time::Instant::now()));
        }
        Watched { inner, watch }
    }
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let w = &self.watch;
        match &polled {
            Poll::Pending => w.set(BodyPhase::AwaitingClient),
            Poll::Ready(None) => w.set(BodyPhase::Received(tokio::time::Instant::now())),
            Poll::Ready(Some(Err(_))) => {
                w.broken.store(true, Ordering::Relaxed);
                w.set(BodyPhase::Idle);
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    w.received.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
                if hyper::body::Body::is_end_stream(&self.inner) {
                    w.set(BodyPhase::Received(tokio::time::Instant::now()));
                } else {
                    w.set(BodyPhase::Idle);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Rewrites an error answer that is not JSON (a rejection of axum or tower-http: 405,
/// 413, 415, a malformed path) as `{"error", "hint"}`.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = to_bytes(body, QUOTE_LIMIT * 4)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let error = if text.is_empty() || text.len() > QUOTE_LIMIT {
        reason
    } else {
        format!("{reason}: {text}")
    };
    let mut out = ApiError::new(status, error, hint_for(status)).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// The hint of an error answer that has none of its own.
pub(crate) fn hint_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "see GET / for the dashboard; the API is under /api/ (kernels, incidents), plus /health and /metrics",
        StatusCode::METHOD_NOT_ALLOWED => "reads are GET; actions (restart, chaos) are POST",
        StatusCode::PAYLOAD_TOO_LARGE => "send a smaller body, or raise [http] body_limit",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send the body as JSON with Content-Type: application/json",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "check the request body and path against the API description in README.md",
        StatusCode::UNAUTHORIZED => "send Authorization: Bearer <token>, where the token is the content of <state-dir>/token",
        _ => "see GET /health and the log (logs/grace.jsonl)",
    }
}

/// Every call that is not a read needs `Authorization: Bearer <token>`.
pub(crate) async fn require_token(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if st.token.authorizes(header) {
        return next.run(req).await;
    }
    let error = if header.is_some() {
        "invalid bearer token"
    } else {
        "missing Authorization header"
    };
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        error,
        hint_for(StatusCode::UNAUTHORIZED),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Chaos: delays answers of the API and the dashboard while added latency is set.
/// `/health`, `/ready`, `/metrics` and the chaos endpoints themselves are not delayed, so probes
/// and the harness keep working.
pub(crate) async fn added_latency(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let exempt = path == "/health"
        || path == "/ready"
        || path == "/metrics"
        || path.starts_with("/api/chaos/");
    if !exempt {
        if let Some(d) = st.stats.added_latency().current() {
            tokio::time::sleep(d).await;
        }
    }
    next.run(req).await
}

/// The answer for a path no route matches.
pub(crate) async fn not_found(req: Request<Body>) -> Response {
    ApiError::not_found(
        format!("no endpoint {} {}", req.method(), req.uri().path()),
        hint_for(StatusCode::NOT_FOUND),
    )
    .into_response()
}
