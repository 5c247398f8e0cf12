//! `serve.json`: the pid, port and start time of the running `grace serve`, written
//! atomically by serve once it listens, and read by the watchdog (health probes), the
//! control commands and the chaos harness.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{atomic_write, StateError, StatePaths};

/// The content of `serve.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    /// The serve process.
    pub pid: u32,
    /// The HTTP port it listens on (the real one when `--port 0` was asked).
    pub port: u16,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The address it is bound to.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The state directory it serves (absolute when it could be resolved).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The longest its graceful shutdown can take, computed from its supervision tree
    /// (each child's shutdown timeout and kill wait, summed); absent until the tree
    /// has started. The watchdog and `grace stop` wait that long (and a margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout_ms: Option<u64>,
    /// How its exec kernels' processes are contained (`cgroup (<dir>)` or
    /// `subreaper (<why>)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
}

fn default_bind() -> String {
    "127.0.0.1".to_owned()
}

impl ServeInfo {
    /// What a watchdog allows serve beyond its recorded shutdown bound (the exit).
    pub const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);
    /// How long a watchdog keeps killing what is left of a serve generation after serve
    /// itself is gone.
    pub const GENERATION_END_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

    /// The record for this process, listening on `bind`:`port`, started now.
    pub fn for_this_process(paths: &StatePaths, bind: &str, port: u16) -> ServeInfo {
        ServeInfo {
            pid: std::process::id(),
            port,
            started_at: crate::time::rfc3339(crate::time::now()),
            bind: bind.to_owned(),
            state_dir: Some(
                std::fs::canonicalize(paths.root()).unwrap_or_else(|_| paths.root().to_path_buf()),
            ),
            shutdown_timeout_ms: None,
            containment: None,
        }
    }

    /// The shutdown bound recorded by serve, if any.
    pub fn shutdown_timeout(&self) -> Option<std::time::Duration> {
        self.shutdown_timeout_ms
            .map(std::time::Duration::from_millis)
    }

    /// How long a watchdog waits for this serve to stop after SIGTERM before SIGKILL:
    /// its recorded bound and [`ServeInfo::STOP_MARGIN`], at least `floor` (the configured
    /// `stop_timeout`).
    pub fn stop_timeout(
        info: Option<&ServeInfo>,
        floor: std::time::Duration,
    ) -> std::time::Duration {
        info.and_then(ServeInfo::shutdown_timeout)
            .map_or(floor, |b| floor.max(b + ServeInfo::STOP_MARGIN))
    }

    /// Where to send health probes: the bound address, or loopback when bound to all
    /// interfaces.
    pub fn health_addr(&self) -> SocketAddr {
        let ip = match self.bind.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Ok(IpAddr::V6(a)) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Ok(a) => a,
            Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        SocketAddr::new(ip, self.port)
    }

    /// Writes `serve.json` atomically.
    pub fn write(&self, paths: &StatePaths) -> Result<(), StateError> {
        let path = paths.serve_json();
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            what: "serve.json",
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        atomic_write(&path, &bytes).map_err(|e| StateError::io(path, "write", e))
    }

    /// Reads `serve.json`; `Ok(None)` when there is none.
    pub fn read(paths: &StatePaths) -> Result<Option<ServeInfo>, StateError> {
        let path = paths.serve_json();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io(path, "read", e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path,
                what: "serve.json",
                reason: e.to_string(),
            })
    }

    /// Removes `serve.json` if it still names `pid` (a serve calls this as it stops).
    pub fn remove_if_pid(paths: &StatePaths, pid: u32) -> Result<(), StateError> {
        if let Ok(Some(info)) = ServeInfo::read(paths) {
            if info.pid == pid {
                let path = paths.serve_json();
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StateError::io(path, "remove", e)),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_probes_loopback_for_wildcard_binds() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        assert_eq!(ServeInfo::read(&paths).expect("read"), None);
        let mut info = ServeInfo::for_this_process(&paths, "0.0.0.0", 8123);
        info.shutdown_timeout_ms = Some(7000);
        info.containment = Some("subreaper (test)".to_owned());
        info.write(&paths).expect("write");
        assert_eq!(ServeInfo::read(&paths).expect("read"), Some(info.clone()));
        assert_eq!(
            info.shutdown_timeout(),
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(info.health_addr().to_string(), "127.0.0.1:8123");
        info.bind = "::".to_owned();
        assert_eq!(info.health_addr().to_string(), "[::1]:8123");
        ServeInfo::remove_if_pid(&paths, info.pid + 1).expect("remove other");
        assert!(paths.serve_json().exists());
        ServeInfo::remove_if_pid(&paths, info.pid).expect("remove");
        assert!(!paths.serve_json().exists());
    }
}
