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

/// One probe: 200 with `"status": "healthy"` is healthy, 200 with another verdict is
/// alive, another status is failing (alive all the same), no answer within `timeout`
/// (refused, reset, a stopped process) is a miss.
pub(crate) async fn probe(addr: SocketAddr, timeout: Duration) -> Probe {
    match crate::alerts::http::get(addr, "/health", timeout).await {
        Ok(a) if a.status == 200 => classify_body(&a.body),
        Ok(_) => Probe::Failing,
        Err(_) => Probe::NoAnswer,
    }
}

/// The verdict in a 200 answer's body.
fn classify_body(body: &[u8]) -> Probe {
    #[derive(serde::Deserialize)]
    struct Verdict {
        status: String,
    }
    match serde_json::from_slice::<Verdict>(body) {
        Ok(v) if v.status == "healthy" => Probe::Healthy,
        _ => Probe::Alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_healthy_verdict_is_healthy() {
        let healthy = br#"{"status":"healthy","reasons":[]}"#;
        assert_eq!(classify_body(healthy), Probe::Healthy);
        let degraded = br#"{"status":"degraded","reasons":["kernel web stopped"]}"#;
        assert_eq!(classify_body(degraded), Probe::Alive);
        assert_eq!(classify_body(b"ok"), Probe::Alive);
    }
}
