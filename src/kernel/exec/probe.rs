//! Health probes of `exec` kernels: an HTTP GET, a TCP connect, or a command.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::options::{HttpTarget, Probe};

/// Runs `probe` within `timeout`; `Err` says why it failed.
pub(crate) async fn run(probe: &Probe, timeout: Duration) -> Result<(), String> {
    let work = async {
        match probe {
            Probe::Http(url) => http(url).await,
            Probe::Tcp(addr) => TcpStream::connect(addr.as_str())
                .await
                .map(|_| ())
                .map_err(|e| format!("connect to {addr}: {e}")),
            Probe::Command(argv) => command(argv).await,
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// A minimal `GET path HTTP/1.0`: healthy on a 2xx or 3xx status line.
async fn http(url: &str) -> Result<(), String> {
    let t = HttpTarget::parse(url)?;
    let mut s = TcpStream::connect(t.authority.as_str())
        .await
        .map_err(|e| format!("connect to {}: {e}", t.authority))?;
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        t.path, t.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("send to {}: {e}", t.authority))?;
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("read from {}: {e}", t.authority))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let code = status_code(&head).ok_or_else(|| format!("{url}: no HTTP status line"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("{url} answered {code}"))
    }
}

/// The status code of an HTTP status line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn command(argv: &[String]) -> Result<(), String> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| "empty probe command".to_owned())?;
    let status = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| format!("cannot run probe {prog:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "probe {prog:?} {}",
            super::child::describe_exit(status)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 503 x\r\n"), Some(503));
        assert_eq!(status_code(b"garbage\r\n"), None);
    }

    #[tokio::test]
    async fn a_tcp_probe_to_a_closed_port_fails_and_to_an_open_one_passes() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let t = Duration::from_secs(2);
        assert!(run(&Probe::Tcp(addr), t).await.is_ok());
        drop(l);
        // A port bound but not listening refuses connections, and nobody else can take
        // it meanwhile (a dropped listener's port could be reused by a parallel test).
        let closed = tokio::net::TcpSocket::new_v4().expect("socket");
        closed
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let addr = closed.local_addr().expect("addr").to_string();
        assert!(run(&Probe::Tcp(addr), t).await.is_err());
    }

    #[tokio::test]
    async fn a_command_probe_passes_on_status_zero_only() {
        let t = Duration::from_secs(5);
        assert!(run(&Probe::Command(vec!["true".into()]), t).await.is_ok());
        let e = run(&Probe::Command(vec!["false".into()]), t).await;
        assert!(e.expect_err("false fails").contains("status 1"));
    }
}
