//! The liveness probe: `GET /health` on the port serve recorded in `serve.json` (or
//! `[watchdog] health_port`), classified for the policy.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::policy::Probe;
use super::WatchdogConfig;
use crate::state::{ServeInfo, StatePaths};

/// Where to probe the serve with pid `pid`: `health_port` if configured, else the port
/// in `serve.json` when that file is this serve's (a stale file names another pid).
pub fn health_addr(cfg: &WatchdogConfig, paths: &StatePaths, pid: u32) -> Option<SocketAddr> {
    if let Some(port) = cfg.health_port {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    match ServeInfo::read(paths) {
        Ok(Some(info)) if info.pid == pid => Some(info.health_addr()),
        _ => None,
    }
}

/// One probe: 200 is healthy, another status is degraded (alive), no answer within
/// `timeout` (refused, reset, a stopped process) is a miss.
pub(crate) async fn probe(addr: SocketAddr, timeout: Duration) -> Probe {
    match crate::alerts::http::get(addr, "/health", timeout).await {
        Ok(a) if a.status == 200 => Probe::Healthy,
        Ok(_) => Probe::Degraded,
        Err(_) => Probe::NoAnswer,
    }
}
