//! Starting and stopping the HTTP server: bind (loopback by default), serve the router,
//! shut down gracefully.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::collector::{self, SharedTallies};
use super::config::HttpConfig;
use super::error::HttpError;
use super::routes;
use super::signals::ApiStats;
use super::token::Token;
use crate::tree::System;

/// What every handler shares.
pub(crate) struct AppState {
    pub system: Arc<System>,
    pub cfg: HttpConfig,
    pub token: Token,
    pub started: Instant,
    pub stats: Arc<ApiStats>,
    pub tallies: SharedTallies,
}

/// A running HTTP server.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    collector: JoinHandle<()>,
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
        self.collector.abort();
        self.system.bus.unsubscribe(collector::SUBSCRIBER);
    }

    /// The server's request accounting (what the api_timeout and kpi_threshold
    /// triggers watch).
    pub fn stats(&self) -> Arc<ApiStats> {
        self.stats.clone()
    }

    /// Whether the server task has ended (it only ends on shutdown or a fatal error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for HttpServer {
    /// A server dropped without [`HttpServer::shutdown`] (its kernel was killed) stops
    /// serving at once, so that the next incarnation can bind the same port.
    fn drop(&mut self) {
        self.task.abort();
        self.collector.abort();
    }
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
    let stats = Arc::new(ApiStats::default());
    let state = Arc::new(AppState {
        system: system.clone(),
        cfg: cfg.clone(),
        token,
        started: Instant::now(),
        stats: stats.clone(),
        tallies,
    });
    let app = routes::router(state);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    tracing::info!(addr = %local, "http server listening");
    Ok(HttpServer {
        addr: local,
        stop: Some(tx),
        task,
        collector,
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
