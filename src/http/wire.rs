//! JSON bodies for the answers hyper writes itself. A request hyper cannot parse (400:
//! a malformed request line or header; 414: an over-long URI; 431: over-large or too
//! many headers) never reaches a handler: hyper answers it with an empty body and
//! closes. [`JsonErrors`] wraps each connection's socket and rewrites those answers as
//! they are written, keeping the status: a JSON body `{"error", "hint"}` like every
//! other error of the API, and `connection: close`.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose hyper-made error answers get JSON bodies.
pub(crate) struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer not yet written whole, and how much of it was.
    pending: Vec<u8>,
    sent: usize,
}

impl<S> JsonErrors<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

/// The error and hint of a status hyper answers on its own.
fn explain(status: u16) -> Option<(&'static str, &'static str)> {
    match status {
        400 => Some((
            "malformed request: the request line or a header could not be parsed",
            "send HTTP/1.1: `METHOD /path HTTP/1.1`, then `Name: value` headers, each line ending in CRLF",
        )),
        414 => Some((
            "the request URI is too long",
            "keep the path and query under 64 KiB; the API takes no long query strings",
        )),
        431 => Some((
            "the request headers are too large or too many",
            "send fewer and smaller headers (at most 100)",
        )),
        _ => None,
    }
}

/// The JSON answer replacing `head`, when `head` is a bodiless answer hyper made for a
/// request it could not parse.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let (error, hint) = explain(status)?;
    let lower = text.to_ascii_lowercase();
    if !text.ends_with("\r\n\r\n") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status_line = text.split("\r\n").next()?;
    let body = serde_json::json!({ "error": error, "hint": hint }).to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Writes what is left of a rewritten answer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if let Some(answer) = rewrite(buf) {
            // Taken whole: written by the next write, flush or shutdown.
            self.pending = answer;
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// No vectored writes: hyper then writes an answer's head in one buffer, which
    /// [`rewrite`] sees whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_parse_error_answers_are_rewritten() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper_431).expect("rewritten")).expect("utf8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert!(v["hint"].is_string());
        for keep in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
        ] {
            assert!(rewrite(keep).is_none());
        }
    }
}
