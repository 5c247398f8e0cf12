//! Connections held open against serve: uploads that never finish (a POST announcing
//! a 100-byte body and sending 2 bytes), and idle connections that only take a file
//! descriptor. The guard closes them all on drop. Only loopback addresses are reached:
//! the harness never sends traffic off the host.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use super::inject::{inject_err, Ctx, Held, Injected};
use super::scenario::FaultKind;
use super::ChaosError;

/// The body length a stalled upload announces.
pub const STALL_ANNOUNCED: usize = 100;
/// The body bytes it actually sends.
pub const STALL_SENT: &[u8] = b"{\"";

/// How long one connection may take to be accepted by the kernel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections held open; closed on drop.
#[derive(Debug)]
pub struct HeldConnections {
    streams: Vec<TcpStream>,
}

impl HeldConnections {
    /// How many are held.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

/// The socket address of `host:port`, refused unless `host` is a loopback address
/// (or `localhost`).
pub fn loopback(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if bare.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bare.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host:?} is not an IP address: connections are only made to loopback addresses"),
            )
        })?
    };
    if !ip.is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{ip} is not a loopback address: the harness never sends traffic off the host"),
        ));
    }
    Ok(SocketAddr::new(ip, port))
}

fn connect_all(
    addr: SocketAddr,
    n: usize,
    mut first: impl FnMut(&mut TcpStream) -> std::io::Result<()>,
) -> std::io::Result<HeldConnections> {
    let mut held = HeldConnections {
        streams: Vec::with_capacity(n),
    };
    for i in 0..n {
        let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("connection {} of {n} to {addr}: {e}", i + 1),
            )
        })?;
        first(&mut s)?;
        // An error above drops `held`, which closes the connections made so far.
        held.streams.push(s);
    }
    Ok(held)
}

/// Opens `n` connections to `addr` and sends on each the head of a `POST path` that
/// announces a [`STALL_ANNOUNCED`]-byte body, then only [`STALL_SENT`].
pub fn stall_uploads(
    addr: SocketAddr,
    n: usize,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<HeldConnections> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {STALL_ANNOUNCED}\r\n"
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(STALL_SENT);
    connect_all(addr, n, |s| s.write_all(&request))
}

/// Opens `n` connections to `addr` that send nothing.
pub fn idle(addr: SocketAddr, n: usize) -> std::io::Result<HeldConnections> {
    connect_all(addr, n, |_| Ok(()))
}

/// Opens `n` connections to serve's HTTP port (loopback only): stalled uploads to
/// `stall_path`, or idle ones.
pub(crate) async fn hold(
    ctx: &Ctx,
    kind: &FaultKind,
    n: usize,
    stall_path: Option<String>,
) -> Result<Injected, ChaosError> {
    let (host, port) = ctx.client.resolve().ok_or_else(|| {
        ChaosError::UnsupportedTarget(format!(
            "no serve.json in {}: serve is not running",
            ctx.paths.root().display()
        ))
    })?;
    let addr = loopback(&host, port).map_err(|e| inject_err(kind, e.to_string()))?;
    let token = ctx.client.token().map(str::to_owned);
    let stalled = stall_path.is_some();
    let held = tokio::task::spawn_blocking(move || match stall_path {
        Some(path) => stall_uploads(addr, n, &path, token.as_deref()),
        None => idle(addr, n),
    })
    .await
    .map_err(|e| inject_err(kind, e.to_string()))?
    .map_err(|e| inject_err(kind, e.to_string()))?;
    let note = if stalled {
        format!(
            "{} uploads to {addr} stalled after {} of {} body bytes",
            held.len(),
            STALL_SENT.len(),
            STALL_ANNOUNCED
        )
    } else {
        format!("{} idle connections to {addr}", held.len())
    };
    Ok(Injected {
        held: Held::Connections(held),
        corrupted: None,
        notes: vec![note],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_reached() {
        assert!(loopback("127.0.0.1", 1).is_ok());
        assert!(loopback("::1", 1).is_ok());
        assert!(loopback("[::1]", 1).is_ok());
        assert!(loopback("localhost", 1).is_ok());
        let e = loopback("192.0.2.1", 1).expect_err("not loopback");
        assert!(e.to_string().contains("not a loopback"), "{e}");
        assert!(loopback("example.com", 1).is_err());
    }

    #[test]
    fn idle_connections_are_held_and_closed_on_drop() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let held = idle(addr, 3).expect("connect");
        assert_eq!(held.len(), 3);
        let (mut a, _) = l.accept().expect("accept");
        drop(held);
        let mut buf = [0u8; 1];
        use std::io::Read;
        assert_eq!(a.read(&mut buf).expect("eof"), 0, "closed on drop");
    }
}
