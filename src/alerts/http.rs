//! A minimal HTTP/1.1 client over loopback or LAN addresses (health probes, status
//! queries, webhooks): one request per connection, a timeout over the whole exchange.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// One HTTP request's answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends one request and reads the whole answer, all within `timeout`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    host: &str,
    body: Option<(&str, Vec<u8>)>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONNECTION, "close");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some((content_type, b)) => req
                .header(hyper::header::CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(b))),
            None => req.body(Full::new(Bytes::new())),
        }
        .map_err(|e| format!("bad request: {e}"))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("request to {addr}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body from {addr}: {e}"))?
            .to_bytes()
            .to_vec();
        conn.abort();
        Ok(HttpAnswer { status, body })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("no answer from {addr} within {timeout:?}"))?
}

/// `GET path` on `addr`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<HttpAnswer, String> {
    request(addr, "GET", path, &addr.to_string(), None, &[], timeout).await
}
