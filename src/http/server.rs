//! Starting and stopping the HTTP server: bind (loopback by default), accept connections
//! (hyper HTTP/1 with a header read timeout, within the connection limit of
//! [`super::conns`], with JSON bodies for hyper's own error answers), serve the router,
//! shut down gracefully.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::collector::{self, SharedTallies};
use super::config::HttpConfig;
use super::conns::{self, BusyBody, ConnFigures, ConnStats, Conns, Requests, Slot};
use super::error::HttpError;
use super::readings::{self, SharedReadings};
use super::restart_history::{self, RestartHistory};
use super::signals::ApiStats;
use super::token::Token;
use super::wire::JsonErrors;
use super::{metrics, routes};
use crate::tree::System;

/// What every handler shares.
pub(crate) struct AppState {
    pub system: Arc<System>,
    pub cfg: HttpConfig,
    pub token: Token,
    pub started: Instant,
    pub stats: Arc<ApiStats>,
    pub tallies: SharedTallies,
    pub readings: SharedReadings,
    pub registry: Registry,
    pub history: Arc<RestartHistory>,
}

/// A running HTTP server.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    collector: JoinHandle<()>,
    readings: JoinHandle<()>,
    conns: Arc<ConnStats>,
    recorder: JoinHandle<()>,
    grace: Duration,
    stats: Arc<ApiStats>,
    system: Arc<System>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (up to `[http] shutdown_timeout`),
    /// then closes what is left.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(self.grace, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!(addr = %self.addr, "http connections still open after the grace period; closing them");
            self.task.abort();
        }
        self.stop_subscribers();
    }

    /// Ends the bus subscribers (counting, restart history) with the server.
    fn stop_subscribers(&self) {
        self.collector.abort();
        self.readings.abort();
        self.recorder.abort();
        self.system.bus.unsubscribe(collector::SUBSCRIBER);
        self.system.bus.unsubscribe(restart_history::SUBSCRIBER);
    }

    /// The server's request accounting (what the api_timeout and kpi_threshold
    /// triggers watch).
    pub fn stats(&self) -> Arc<ApiStats> {
        self.stats.clone()
    }

    /// Its connections: open, requests in progress, the limit, those turned away.
    pub fn connections(&self) -> ConnFigures {
        self.conns.figures()
    }

    /// Whether the server task has ended (it only ends on shutdown or a fatal error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for HttpServer {
    /// A server dropped without [`HttpServer::shutdown`] (its kernel panicked or was
    /// killed) stops serving at once, so that the next incarnation can bind the port.
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
            self.task.abort();
            self.stop_subscribers();
        }
    }
}

/// Serves one connection until it ends or `closing` asks it to finish its request and
/// close. A client gets `header_timeout` to send a request's headers (hyper's
/// `header_read_timeout`, from the connection's start and after each answer), after
/// which its connection is closed without a request ever reaching a handler.
async fn serve_connection(
    stream: TcpStream,
    app: axum::Router,
    requests: Requests,
    header_timeout: Duration,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let svc = hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
        let held = requests.start();
        let app = app.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await?;
            Ok::<_, Infallible>(resp.map(|b| BusyBody::new(b, held)))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let io = hyper_util::rt::TokioIo::new(JsonErrors::new(stream));
    let conn = builder.serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "http connection ended with an error");
                }
                break;
            }
            _ = closing.changed() => conn.as_mut().graceful_shutdown(),
        }
    }
}

/// Accepts connections until `stop` fires, then lets each open connection finish its
/// request and waits for them all (the caller bounds the wait).
async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    mut stop: oneshot::Receiver<()>,
    conns: Arc<Conns>,
    header_timeout: Duration,
) {
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut open = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: wait for some to be freed.
                tracing::error!(error = %e, "http accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        conns.admit(stream, |stream, slot: Slot, requests| {
            let (app, closing) = (app.clone(), closing.subscribe());
            open.spawn(async move {
                let _slot = slot;
                serve_connection(stream, app, requests, header_timeout, closing).await;
            })
        });
        // Forget connections that have ended.
        while open.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    while open.join_next().await.is_some() {}
}

/// Accept errors that concern one connection only.
fn connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Resolves the address to bind: overrides first, then `[http]`.
pub fn bind_address(
    cfg: &HttpConfig,
    port_override: Option<u16>,
    bind_override: Option<&str>,
) -> Result<SocketAddr, HttpError> {
    let host = bind_override.unwrap_or(&cfg.bind).trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| HttpError::BadAddress {
            addr: host.to_owned(),
        })?
    };
    Ok(SocketAddr::new(ip, port_override.unwrap_or(cfg.port)))
}

/// Starts the HTTP server of `system`: binds (127.0.0.1:8000 unless configured or
/// overridden; port 0 picks a free port), loads or creates the API token, and serves
/// health, dashboard, metrics and the API until [`HttpServer::shutdown`].
///
/// A port another process holds is [`HttpError::PortInUse`], so that serve can heal it.
pub async fn start(
    system: Arc<System>,
    cfg: &HttpConfig,
    port_override: Option<u16>,
    bind_override: Option<&str>,
) -> Result<HttpServer, HttpError> {
    let addr = bind_address(cfg, port_override, bind_override)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "http API bound to a non-loopback address: reachable from other hosts; POSTs still need the bearer token");
    }
    let token = Token::load_or_create(&system.paths.token())?;
    let listener = TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            HttpError::PortInUse {
                addr,
                port: addr.port(),
            }
        } else {
            HttpError::Bind { addr, source }
        }
    })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let tallies = SharedTallies::default();
    let collector = collector::spawn(&system.bus, tallies.clone());
    let shared = SharedReadings::default();
    let readings = readings::spawn(system.clone(), cfg.sample_interval, shared.clone());
    let history = Arc::new(RestartHistory::open(&system.paths.restart_history()));
    let recorder = restart_history::spawn(&system.bus, history.clone());
    let stats = Arc::new(ApiStats::default());
    let (max_fds, open_fds) = conns::descriptors();
    let limit = conns::effective_limit(cfg.max_connections, max_fds, open_fds);
    if limit < cfg.max_connections {
        tracing::warn!(configured = cfg.max_connections, limit, max_fds, open_fds,
            "http connection limit lowered to stay below the descriptor limit; raise it (ulimit -n, LimitNOFILE=) to serve more");
    }
    let conn_stats = Arc::new(ConnStats::default());
    let registry = metrics::registry(metrics::Sources {
        system: system.clone(),
        api: stats.clone(),
        conns: conn_stats.clone(),
        tallies: tallies.clone(),
        readings: shared.clone(),
    });
    let state = Arc::new(AppState {
        system: system.clone(),
        cfg: cfg.clone(),
        token,
        started: Instant::now(),
        stats: stats.clone(),
        tallies,
        readings: shared,
        registry,
        history,
    });
    let app = routes::router(state);
    let (tx, rx) = oneshot::channel::<()>();
    let conns = Conns::new(limit, conn_stats.clone());
    let task = tokio::spawn(accept_loop(listener, app, rx, conns, cfg.header_timeout));
    tracing::info!(addr = %local, max_connections = limit, "http server listening");
    Ok(HttpServer {
        addr: local,
        stop: Some(tx),
        task,
        collector,
        readings,
        conns: conn_stats,
        recorder,
        grace: cfg.shutdown_timeout,
        stats,
        system,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_bad_addresses_are_refused() {
        let cfg = HttpConfig::default();
        assert_eq!(
            bind_address(&cfg, None, None).expect("addr"),
            "127.0.0.1:8000".parse().expect("lit")
        );
        assert_eq!(
            bind_address(&cfg, Some(0), Some("[::1]")).expect("addr"),
            "[::1]:0".parse().expect("lit")
        );
        assert_eq!(
            bind_address(&cfg, Some(9), Some("localhost")).expect("addr"),
            "127.0.0.1:9".parse().expect("lit")
        );
        assert!(matches!(
            bind_address(&cfg, None, Some("example.com")),
            Err(HttpError::BadAddress { .. })
        ));
    }
}
