//! A small HTTP/1.0 client over loopback TCP: enough for the harness's probes and
//! chaos calls, with a timeout on every request and the port read afresh from
//! `serve.json` when serve may come back on another one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ChaosError;

/// Where the target's HTTP server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A fixed `host:port` (from `--target URL`).
    Fixed {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Whatever `serve.json` says now (a restarted serve may be on another port).
    ServeJson(PathBuf),
}

impl Endpoint {
    /// Parses `http://host:port[/...]`.
    pub fn from_url(url: &str) -> Result<Endpoint, ChaosError> {
        let bad = |why: &str| {
            ChaosError::Target(format!(
                "--target {url:?}: {why}; give a URL such as http://127.0.0.1:8000"
            ))
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port"))?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Endpoint::Fixed {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
        })
    }
}

/// What `serve.json` holds (the fields the harness uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServeRecord {
    /// The serve process.
    pub pid: u32,
    /// Its port.
    pub port: u16,
    /// Its bind address.
    #[serde(default)]
    pub bind: Option<String>,
}

/// Reads `serve.json`; `None` when it is missing or being replaced.
pub fn read_serve_json(path: &Path) -> Option<ServeRecord> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// A response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The harness's HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    /// A client for `endpoint`, sending `token` as a bearer token on POSTs.
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Client {
        Client {
            endpoint,
            token,
            timeout: Duration::from_secs(3),
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The current base URL, if the endpoint can be resolved.
    pub fn base_url(&self) -> Option<String> {
        self.resolve().map(|(h, p)| format!("http://{h}:{p}"))
    }

    /// The bearer token, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The host and port requests go to now.
    pub(crate) fn resolve(&self) -> Option<(String, u16)> {
        match &self.endpoint {
            Endpoint::Fixed { host, port } => Some((host.clone(), *port)),
            Endpoint::ServeJson(path) => {
                let rec = read_serve_json(path)?;
                let host = match rec.bind.as_deref() {
                    None | Some("0.0.0.0") | Some("") => "127.0.0.1".to_owned(),
                    Some("::") => "::1".to_owned(),
                    Some(b) => b.to_owned(),
                };
                Some((host, rec.port))
            }
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<HttpResponse, ChaosError> {
        self.request("GET", path, None).await
    }

    /// `POST path` with a JSON body and the bearer token.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, ChaosError> {
        self.request("POST", path, Some(body.to_string())).await
    }

    async fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<HttpResponse, ChaosError> {
        let err = |url: String, message: String| ChaosError::Http {
            method,
            url,
            message,
        };
        let Some((host, port)) = self.resolve() else {
            return Err(err(
                path.to_owned(),
                "no serve.json: serve is not running".to_owned(),
            ));
        };
        let url = format!("http://{host}:{port}{path}");
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\n");
        if let (Some(t), "POST") = (&self.token, method) {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or_default();
        if method == "POST" {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let exchange = async {
            let mut stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.write_all(req.as_bytes()).await?;
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let raw = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => return Err(err(url, format!("no answer within {:?}", self.timeout))),
            Ok(Err(e)) => return Err(err(url, e.to_string())),
            Ok(Ok(raw)) => raw,
        };
        parse_response(&raw).map_err(|m| err(url, m))
    }
}

/// Parses a whole HTTP/1.x response.
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".to_owned());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}")
            .expect("plain");
        assert_eq!((r.status, r.body.as_slice()), (503, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn urls_parse_to_host_and_port() {
        assert_eq!(
            Endpoint::from_url("http://127.0.0.1:8123/").expect("url"),
            Endpoint::Fixed {
                host: "127.0.0.1".into(),
                port: 8123
            }
        );
        assert!(Endpoint::from_url("https://x:1").is_err());
        assert!(Endpoint::from_url("http://:1").is_err());
    }
}
