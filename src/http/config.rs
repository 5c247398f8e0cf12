//! The `[http]` section of `grace.toml`.

use std::time::Duration;

use serde::Deserialize;

/// Settings of the HTTP server inside `grace serve`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whether serve runs the HTTP server at all.
    pub enabled: bool,
    /// Address to bind. Loopback by default; any other address must be set on purpose
    /// and is logged at warn, because the API can restart kernels.
    pub bind: String,
    /// Port (0 picks a free one; `serve.json` tells which).
    pub port: u16,
    /// A request that takes longer is answered 504 and counted as an API timeout.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted request body, bytes (larger: 413).
    pub body_limit: usize,
    /// How long `POST /api/kernels/{name}/restart` waits for the kernel to run again.
    #[serde(with = "humantime_serde")]
    pub restart_timeout: Duration,
    /// How long a graceful shutdown waits for open requests before closing them.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A connection that has not sent a request's whole headers this long after it
    /// opened (or after its previous answer) is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Connections served at once. At the limit, a new connection closes the oldest
    /// idle one (no request in progress); when none is idle it is answered 503 and
    /// closed. Lowered at start to stay below the process's descriptor limit.
    pub max_connections: usize,
    /// How often the figures that cost a mailbox round trip or a file read (trigger
    /// counters, the watchdog's state, snapshots, process and host samples) are taken
    /// for `/operator/dashboard` and `/metrics`, which answer from the latest reading.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            bind: "127.0.0.1".to_owned(),
            port: 8000,
            request_timeout: Duration::from_secs(10),
            body_limit: 64 * 1024,
            restart_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            sample_interval: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_8000_and_parse_from_toml() {
        let d = HttpConfig::default();
        assert_eq!((d.bind.as_str(), d.port), ("127.0.0.1", 8000));
        assert_eq!(d.max_connections, 512);
        let c: HttpConfig = toml::from_str(
            "port = 0\nrequest_timeout = \"2s\"\nbody_limit = 10\nmax_connections = 8\nheader_timeout = \"3s\"",
        )
        .expect("parse");
        assert_eq!(
            (c.max_connections, c.header_timeout),
            (8, Duration::from_secs(3))
        );
        assert_eq!(c.port, 0);
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.body_limit, 10);
        assert_eq!(c.bind, "127.0.0.1");
        assert!(toml::from_str::<HttpConfig>("nope = 1").is_err());
    }
}
