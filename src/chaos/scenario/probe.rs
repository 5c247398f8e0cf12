//! Probes: checks of the target's state (Grace's own view: `/health`, kernels,
//! incidents) and of the user's service beside it (`service_http`, `tcp_connect`).
//!
//! A probe of the user's service only ever reaches a loopback address: the harness
//! never sends traffic off the host, and an address that is not loopback is rejected
//! when the scenario is parsed, with its line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A check of the target's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// `GET /health` answers 200.
    HealthOk,
    /// Every kernel in `/api/kernels` is `running`.
    AllKernelsRunning,
    /// No incident in `/api/incidents` is still open (`open`, `mitigating` or
    /// `verifying`).
    NoOpenIncidents,
    /// This kernel is `running`.
    KernelRunning(String),
    /// `GET path` of serve answers this status.
    HttpGet {
        /// The path, starting with `/`.
        path: String,
        /// The expected status.
        #[serde(default = "ok_status")]
        status: u16,
    },
    /// At least `min` files match this glob (relative to the state directory), such
    /// as the snapshots a scenario is about to corrupt.
    FilesExist {
        /// The glob.
        glob: String,
        /// How many must match (default 1).
        #[serde(default = "one")]
        min: usize,
    },
    /// The user's service: `GET url` (a loopback `http://` URL) answers this status
    /// within a short timeout.
    ServiceHttp {
        /// The URL.
        url: LoopbackUrl,
        /// The expected status (default 200).
        #[serde(default = "ok_status")]
        status: u16,
    },
    /// The user's service accepts a TCP connection at this loopback `host:port`.
    TcpConnect(LoopbackAddr),
}

fn ok_status() -> u16 {
    200
}

fn one() -> usize {
    1
}

impl Probe {
    /// A short label such as `kernel_running(kv_store)`.
    pub fn label(&self) -> String {
        match self {
            Probe::HealthOk => "health_ok".to_owned(),
            Probe::AllKernelsRunning => "all_kernels_running".to_owned(),
            Probe::NoOpenIncidents => "no_open_incidents".to_owned(),
            Probe::KernelRunning(k) => format!("kernel_running({k})"),
            Probe::HttpGet { path, status } => format!("http_get({path} -> {status})"),
            Probe::FilesExist { glob, min } => format!("files_exist({glob} >= {min})"),
            Probe::ServiceHttp { url, status } => format!("service_http({url} -> {status})"),
            Probe::TcpConnect(a) => format!("tcp_connect({a})"),
        }
    }
}

/// A `host:port` whose host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoopbackAddr {
    /// The address to connect to (`localhost` is `127.0.0.1`).
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    written: String,
}

impl LoopbackAddr {
    /// Parses `host:port` (IPv6 in brackets); `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<LoopbackAddr, String> {
        let fix = "give a loopback address such as 127.0.0.1:18080 (the harness never sends traffic off the host)";
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{what} {text:?} has no port; {fix}"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{what} {text:?}: bad port {port:?}; {fix}"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = if bare.eq_ignore_ascii_case("localhost") {
            IpAddr::from([127, 0, 0, 1])
        } else {
            bare.parse()
                .map_err(|_| format!("{what} {text:?}: {host:?} is not an IP address; {fix}"))?
        };
        if !ip.is_loopback() {
            return Err(format!(
                "{what} {text:?}: {ip} is not a loopback address; {fix}"
            ));
        }
        Ok(LoopbackAddr {
            ip,
            port,
            written: text.to_owned(),
        })
    }
}

impl TryFrom<String> for LoopbackAddr {
    type Error = String;

    fn try_from(s: String) -> Result<LoopbackAddr, String> {
        LoopbackAddr::parse(&s, "tcp_connect")
    }
}

impl From<LoopbackAddr> for String {
    fn from(a: LoopbackAddr) -> String {
        a.written
    }
}

impl std::fmt::Display for LoopbackAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

/// An `http://host:port/path` URL whose host is a loopback address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoopbackUrl {
    /// Where to connect.
    pub addr: LoopbackAddr,
    /// The request path (`/` when the URL has none).
    pub path: String,
    written: String,
}

impl TryFrom<String> for LoopbackUrl {
    type Error = String;

    fn try_from(url: String) -> Result<LoopbackUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("service_http url {url:?} is not an http:// URL; give one such as http://127.0.0.1:18080/")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = LoopbackAddr::parse(authority, &format!("service_http url {url:?}: host"))?;
        Ok(LoopbackUrl {
            addr,
            path: path.to_owned(),
            written: url,
        })
    }
}

impl From<LoopbackUrl> for String {
    fn from(u: LoopbackUrl) -> String {
        u.written
    }
}

impl std::fmt::Display for LoopbackUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        let a = LoopbackAddr::parse("127.0.0.1:18080", "t").expect("v4");
        assert_eq!((a.ip, a.port), (IpAddr::from([127, 0, 0, 1]), 18080));
        assert!(LoopbackAddr::parse("[::1]:80", "t").is_ok());
        assert!(LoopbackAddr::parse("localhost:80", "t").is_ok());
        assert!(LoopbackAddr::parse("127.3.2.1:80", "t").is_ok());
        let e = LoopbackAddr::parse("10.0.0.1:80", "t").expect_err("not loopback");
        assert!(e.contains("not a loopback address"), "{e}");
        assert!(LoopbackAddr::parse("example.com:80", "t").is_err());
        assert!(LoopbackAddr::parse("127.0.0.1", "t").is_err());
        assert!(LoopbackAddr::parse("127.0.0.1:0", "t").is_err());
        let u = LoopbackUrl::try_from("http://127.0.0.1:18080".to_owned()).expect("url");
        assert_eq!((u.addr.port, u.path.as_str()), (18080, "/"));
        let u = LoopbackUrl::try_from("http://[::1]:9/a?b".to_owned()).expect("url");
        assert_eq!(u.path, "/a?b");
        assert!(LoopbackUrl::try_from("https://127.0.0.1:1/".to_owned()).is_err());
        assert!(LoopbackUrl::try_from("http://192.168.1.2:80/".to_owned()).is_err());
    }
}
