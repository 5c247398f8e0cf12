//! The systemd notification protocol (`Type=notify`, `WatchdogSec=`): datagrams such as
//! `READY=1` and `WATCHDOG=1` to `$NOTIFY_SOCKET`, sent with std's `UnixDatagram`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct SdNotify {
    sock: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl SdNotify {
    /// From `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace); `None`
    /// when not run by a service manager that listens.
    pub fn from_env() -> Option<SdNotify> {
        let raw = std::env::var_os("NOTIFY_SOCKET")?;
        let raw = raw.to_str()?;
        let addr = if let Some(name) = raw.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
        } else {
            std::os::unix::net::SocketAddr::from_pathname(raw).ok()?
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(SdNotify { sock, addr })
    }

    /// Sends `state` (e.g. `READY=1`, `STATUS=...`); failures are ignored, as systemd's
    /// own `sd_notify` callers do.
    pub fn notify(&self, state: &str) {
        let _ = self.sock.send_to_addr(state.as_bytes(), &self.addr);
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is meant for this
/// process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_the_socket() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("notify.sock");
        let server = UnixDatagram::bind(&p).expect("bind");
        let n = SdNotify {
            sock: UnixDatagram::unbound().expect("sock"),
            addr: std::os::unix::net::SocketAddr::from_pathname(&p).expect("addr"),
        };
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1");
    }
}
