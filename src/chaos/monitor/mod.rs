//! Watching the target: one observation (health, kernels, incidents, pids, alerts)
//! every poll period, turned into a [`Timeline`] of changes, and the probes evaluated
//! on it.
//!
//! This module holds the [`Monitor`] and what it answers about the latest
//! observation; `snapshot` holds one observation, how the API's answers are parsed
//! and how a probe is judged on it; `record` turns each observation into changes on
//! the timeline.

mod record;
mod snapshot;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use std::time::Duration;

use super::client::{Client, Endpoint};
use super::measure::Timeline;
use super::scenario::{LoopbackAddr, LoopbackUrl, Probe};
use crate::state::StatePaths;
pub(crate) use snapshot::parse_kernels;
use snapshot::{parse_incidents, Snapshot};

/// How long a probe of the user's service may take.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET url` of the user's service: its status, or why there was none.
async fn service_get(url: &LoopbackUrl) -> Result<u16, String> {
    let endpoint = Endpoint::Fixed {
        host: url.addr.ip.to_string(),
        port: url.addr.port,
    };
    Client::new(endpoint, None)
        .with_timeout(SERVICE_TIMEOUT)
        .get(&url.path)
        .await
        .map(|r| r.status)
        .map_err(|e| match e {
            crate::chaos::ChaosError::Http { message, .. } => message,
            other => other.to_string(),
        })
}

/// Whether the user's service accepts a connection at `addr`.
async fn tcp_connect(addr: &LoopbackAddr) -> Result<(), String> {
    let sa = std::net::SocketAddr::new(addr.ip, addr.port);
    match tokio::time::timeout(SERVICE_TIMEOUT, tokio::net::TcpStream::connect(sa)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("not accepted within {SERVICE_TIMEOUT:?}")),
    }
}

/// Observes the target and keeps the timeline.
pub(crate) struct Monitor {
    client: Client,
    paths: StatePaths,
    probes: Vec<Probe>,
    steady: Vec<Probe>,
    t0: Instant,
    wall0: DateTime<Utc>,
    pub timeline: Timeline,
    incident_baseline: Option<HashSet<String>>,
    incident_index: HashMap<String, usize>,
    kernels: HashMap<String, (u64, String)>,
    alerts_seen: Option<HashSet<String>>,
    probe_state: BTreeMap<String, (bool, f64)>,
    pub last_failing: Vec<String>,
}

impl Monitor {
    /// Watches `steady` (and `extra` probes, and always `health_ok`).
    pub fn new(client: Client, paths: StatePaths, steady: Vec<Probe>, extra: &[Probe]) -> Monitor {
        let mut probes = steady.clone();
        for p in extra.iter().chain(std::iter::once(&Probe::HealthOk)) {
            if !probes.contains(p) {
                probes.push(p.clone());
            }
        }
        Monitor {
            client,
            paths,
            probes,
            steady,
            t0: Instant::now(),
            wall0: Utc::now(),
            timeline: Timeline::default(),
            incident_baseline: None,
            incident_index: HashMap::new(),
            kernels: HashMap::new(),
            alerts_seen: None,
            probe_state: BTreeMap::new(),
            last_failing: Vec::new(),
        }
    }

    /// Makes `now` time zero: what was seen so far keeps its (now negative) times.
    pub fn rebase(&mut self) -> (Instant, DateTime<Utc>) {
        let now = Instant::now();
        let shift = (now - self.t0).as_secs_f64();
        let tl = &mut self.timeline;
        tl.samples.iter_mut().for_each(|t| *t -= shift);
        tl.steady.iter_mut().for_each(|c| c.t -= shift);
        tl.probes.values_mut().flatten().for_each(|c| c.t -= shift);
        tl.kernels.iter_mut().for_each(|c| c.t -= shift);
        tl.incidents.iter_mut().for_each(|c| {
            c.opened -= shift;
            c.resolved = c.resolved.map(|r| r - shift);
        });
        tl.serve_pids.iter_mut().for_each(|c| c.t -= shift);
        tl.watchdog_pids.iter_mut().for_each(|c| c.t -= shift);
        tl.alerts.iter_mut().for_each(|c| c.t -= shift);
        tl.end -= shift;
        self.probe_state.values_mut().for_each(|v| v.1 -= shift);
        self.t0 = now;
        self.wall0 = Utc::now();
        (self.t0, self.wall0)
    }

    /// Seconds since time zero.
    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Whether `probe` (one of those watched) passed at the last observation.
    pub fn probe_ok(&self, probe: &Probe) -> bool {
        self.probe_state
            .get(&probe.label())
            .is_some_and(|(ok, _)| *ok)
    }

    /// For how long `probe` has been failing without a break (0 when it passes).
    pub fn failing_for(&self, probe: &Probe) -> f64 {
        match self.probe_state.get(&probe.label()) {
            Some((false, since)) => self.now() - since,
            _ => 0.0,
        }
    }

    /// For how long the steady state has held without a break (0 when it does not).
    pub fn steady_for(&self) -> f64 {
        match self.timeline.steady.last() {
            Some(c) if c.ok => self.timeline.end - c.t,
            _ => 0.0,
        }
    }

    /// Whether the steady state held at the last observation.
    pub fn steady_ok(&self) -> bool {
        self.timeline.steady.last().is_some_and(|c| c.ok)
    }

    async fn snapshot(&self) -> Snapshot {
        let (h, k, i) = tokio::join!(
            self.client.get("/health"),
            self.client.get("/api/kernels"),
            self.client.get("/api/incidents?limit=500"),
        );
        let mut s = Snapshot {
            health: Some(h.map(|r| r.status).map_err(|e| e.to_string())),
            kernels: Some(k.map_err(|e| e.to_string()).and_then(|r| {
                if r.status != 200 {
                    return Err(format!("answered {}", r.status));
                }
                r.json()
                    .ok_or_else(|| "not JSON".to_owned())
                    .and_then(|v| parse_kernels(&v))
            })),
            incidents: Some(i.map_err(|e| e.to_string()).and_then(|r| {
                if r.status != 200 {
                    return Err(format!("answered {}", r.status));
                }
                r.json()
                    .ok_or_else(|| "not JSON".to_owned())
                    .and_then(|v| parse_incidents(&v))
            })),
            gets: HashMap::new(),
            files: HashMap::new(),
            services: HashMap::new(),
            tcp: HashMap::new(),
        };
        for p in &self.probes {
            if let Probe::HttpGet { path, .. } = p {
                let r = self.client.get(path).await;
                s.gets
                    .insert(path.clone(), r.map(|r| r.status).map_err(|e| e.to_string()));
            }
            if let Probe::FilesExist { glob, .. } = p {
                let n = super::guard::matches(self.paths.root(), glob).len();
                s.files.insert(glob.clone(), n);
            }
            if let Probe::ServiceHttp { url, .. } = p {
                s.services.insert(url.to_string(), service_get(url).await);
            }
            if let Probe::TcpConnect(addr) = p {
                s.tcp.insert(addr.to_string(), tcp_connect(addr).await);
            }
        }
        s
    }

    /// Makes one observation and records what changed; returns its time.
    pub async fn observe(&mut self) -> f64 {
        let snap = self.snapshot().await;
        let t = self.now();
        self.record(&snap, t);
        t
    }
}
