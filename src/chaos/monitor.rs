//! Watching the target: one observation (health, kernels, incidents, pids, alerts)
//! every poll period, turned into a [`Timeline`] of changes, and the probes evaluated
//! on it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::client::{read_serve_json, Client};
use super::measure::{
    AlertSeen, IncidentSpan, KernelEvent, PidChange, ProbeChange, SteadyChange, Timeline,
};
use super::scenario::Probe;
use crate::state::StatePaths;

/// A kernel as `/api/kernels` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KernelView {
    pub name: String,
    pub state: String,
    pub restarts: u64,
}

/// One observation.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub health: Option<Result<u16, String>>,
    pub kernels: Option<Result<Vec<KernelView>, String>>,
    pub incidents: Option<Result<Vec<Value>, String>>,
    pub gets: HashMap<String, Result<u16, String>>,
    /// `files_exist` globs and how many files matched.
    pub files: HashMap<String, usize>,
}

fn list<'a>(v: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    v.as_array()
        .or_else(|| v.get(key).and_then(Value::as_array))
}

/// Parses `/api/kernels` (an array, or an object with a `kernels` array).
pub(crate) fn parse_kernels(v: &Value) -> Result<Vec<KernelView>, String> {
    let items = list(v, "kernels").ok_or("/api/kernels is not a list of kernels")?;
    Ok(items
        .iter()
        .filter_map(|k| {
            Some(KernelView {
                name: k.get("name")?.as_str()?.to_owned(),
                state: k
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                restarts: k.get("restarts").and_then(Value::as_u64).unwrap_or(0),
            })
        })
        .collect())
}

/// Parses `/api/incidents` (an array, or an object with an `incidents` array).
pub(crate) fn parse_incidents(v: &Value) -> Result<Vec<Value>, String> {
    list(v, "incidents")
        .cloned()
        .ok_or_else(|| "/api/incidents is not a list of incidents".to_owned())
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether a probe passes on a snapshot; `Err` says why not.
pub(crate) fn evaluate(probe: &Probe, s: &Snapshot) -> Result<(), String> {
    let kernels = || match &s.kernels {
        Some(Ok(k)) => Ok(k),
        Some(Err(e)) => Err(format!("/api/kernels: {e}")),
        None => Err("/api/kernels not read".to_owned()),
    };
    match probe {
        Probe::HealthOk => match &s.health {
            Some(Ok(200)) => Ok(()),
            Some(Ok(code)) => Err(format!("/health answered {code}")),
            Some(Err(e)) => Err(e.clone()),
            None => Err("/health not read".to_owned()),
        },
        Probe::AllKernelsRunning => {
            let k = kernels()?;
            let bad: Vec<String> = k
                .iter()
                .filter(|k| k.state != "running")
                .map(|k| format!("{} {}", k.name, k.state))
                .collect();
            if k.is_empty() {
                Err("no kernels listed".to_owned())
            } else if bad.is_empty() {
                Ok(())
            } else {
                Err(format!("not running: {}", bad.join(", ")))
            }
        }
        Probe::KernelRunning(name) => match kernels()?.iter().find(|k| k.name == *name) {
            Some(k) if k.state == "running" => Ok(()),
            Some(k) => Err(format!("{name} is {}", k.state)),
            None => Err(format!("no kernel named {name}")),
        },
        Probe::NoOpenIncidents => match &s.incidents {
            Some(Ok(list)) => {
                let open: Vec<String> = list
                    .iter()
                    .filter(|i| matches!(text(i, "status").as_str(), "open" | "mitigating"))
                    .map(|i| format!("{} ({})", text(i, "incident_id"), text(i, "trigger")))
                    .collect();
                if open.is_empty() {
                    Ok(())
                } else {
                    Err(format!("open incidents: {}", open.join(", ")))
                }
            }
            Some(Err(e)) => Err(format!("/api/incidents: {e}")),
            None => Err("/api/incidents not read".to_owned()),
        },
        Probe::HttpGet { path, status } => match s.gets.get(path) {
            Some(Ok(code)) if code == status => Ok(()),
            Some(Ok(code)) => Err(format!("GET {path} answered {code}, expected {status}")),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("GET {path} not made")),
        },
        Probe::FilesExist { glob, min } => match s.files.get(glob) {
            Some(n) if n >= min => Ok(()),
            Some(n) => Err(format!("{n} file(s) match {glob}, {min} wanted")),
            None => Err(format!("{glob} not looked for")),
        },
    }
}

/// Seconds between `t` (RFC 3339) and `wall0`.
pub(crate) fn offset_of(t: &str, wall0: DateTime<Utc>) -> Option<f64> {
    let dt = DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc);
    Some((dt - wall0).num_microseconds()? as f64 / 1e6)
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    t.parse().ok().or_else(|| {
        serde_json::from_str::<Value>(t)
            .ok()?
            .get("pid")?
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
    })
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

    fn record(&mut self, snap: &Snapshot, t: f64) {
        let tl = &mut self.timeline;
        tl.samples.push(t);
        tl.end = t;
        // Probes and the steady state.
        let mut failing = Vec::new();
        for p in &self.probes {
            let r = evaluate(p, snap);
            let ok = r.is_ok();
            if let Err(why) = &r {
                if self.steady.contains(p) {
                    failing.push(format!("{}: {why}", p.label()));
                }
            }
            let label = p.label();
            let changed = self.probe_state.get(&label).is_none_or(|s| s.0 != ok);
            if changed {
                self.probe_state.insert(label.clone(), (ok, t));
                tl.probes
                    .entry(label)
                    .or_default()
                    .push(ProbeChange { t, ok });
            }
        }
        let ok = failing.is_empty();
        if tl
            .steady
            .last()
            .is_none_or(|c| c.ok != ok || c.failing != failing)
        {
            tl.steady.push(SteadyChange {
                t,
                ok,
                failing: failing.clone(),
            });
        }
        self.last_failing = failing;
        // Kernels.
        if let Some(Ok(ks)) = &snap.kernels {
            for k in ks {
                let now = (k.restarts, k.state.clone());
                if self.kernels.get(&k.name) != Some(&now) {
                    self.kernels.insert(k.name.clone(), now);
                    tl.kernels.push(KernelEvent {
                        t,
                        kernel: k.name.clone(),
                        restarts: k.restarts,
                        state: k.state.clone(),
                    });
                }
            }
        }
        // Incidents.
        if let Some(Ok(list)) = &snap.incidents {
            let first = self.incident_baseline.is_none();
            let baseline = self.incident_baseline.get_or_insert_with(HashSet::new);
            for i in list {
                let id = text(i, "incident_id");
                if id.is_empty() || (first && baseline.insert(id.clone())) || baseline.contains(&id)
                {
                    continue;
                }
                let span = IncidentSpan {
                    id: id.clone(),
                    component: text(i, "component"),
                    trigger: text(i, "trigger"),
                    failure_mode: text(i, "failure_mode"),
                    playbook: i.get("playbook").and_then(Value::as_str).map(str::to_owned),
                    status: text(i, "status"),
                    opened: offset_of(&text(i, "detected_at"), self.wall0).unwrap_or(t),
                    resolved: i
                        .get("resolved_at")
                        .and_then(Value::as_str)
                        .and_then(|r| offset_of(r, self.wall0)),
                    success: i.get("success").and_then(Value::as_bool),
                    mttr_seconds: i.get("mttr_seconds").and_then(Value::as_f64),
                };
                match self.incident_index.get(&id) {
                    Some(&ix) => tl.incidents[ix] = span,
                    None => {
                        self.incident_index.insert(id, tl.incidents.len());
                        tl.incidents.push(span);
                    }
                }
            }
        }
        // Pids.
        let serve = read_serve_json(&self.paths.serve_json()).map(|r| r.pid);
        if tl.serve_pids.last().is_none_or(|c| c.pid != serve) {
            tl.serve_pids.push(PidChange { t, pid: serve });
        }
        let wd = read_pid(&self.paths.watchdog_pid());
        if tl.watchdog_pids.last().is_none_or(|c| c.pid != wd) {
            tl.watchdog_pids.push(PidChange { t, pid: wd });
        }
        // Alerts.
        let names: HashSet<String> = std::fs::read_dir(self.paths.alerts_dir())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json") && n != "latest_notification.json")
                    .collect()
            })
            .unwrap_or_default();
        match &mut self.alerts_seen {
            None => self.alerts_seen = Some(names),
            Some(seen) => {
                let mut new: Vec<String> = names.difference(seen).cloned().collect();
                new.sort();
                for file in new {
                    let severity = file.split('_').next().unwrap_or_default().to_owned();
                    tl.alerts.push(AlertSeen {
                        t,
                        severity,
                        file: file.clone(),
                    });
                    seen.insert(file);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_evaluate_on_snapshots() {
        let mut s = Snapshot {
            health: Some(Ok(503)),
            ..Snapshot::default()
        };
        assert!(evaluate(&Probe::HealthOk, &s).is_err());
        s.health = Some(Ok(200));
        assert!(evaluate(&Probe::HealthOk, &s).is_ok());
        let k = serde_json::json!([
            {"name": "a", "state": "running", "restarts": 1},
            {"name": "b", "state": "restarting"}
        ]);
        s.kernels = Some(parse_kernels(&k));
        assert!(evaluate(&Probe::KernelRunning("a".into()), &s).is_ok());
        let e = evaluate(&Probe::AllKernelsRunning, &s).expect_err("b restarting");
        assert!(e.contains("b restarting"), "{e}");
        assert!(evaluate(&Probe::KernelRunning("zz".into()), &s).is_err());
        let inc = serde_json::json!({"incidents": [{"incident_id": "i1", "status": "resolved"}]});
        s.incidents = Some(parse_incidents(&inc));
        assert!(evaluate(&Probe::NoOpenIncidents, &s).is_ok());
        let glob = "snapshots/*/model_*.pt".to_owned();
        let snap = Probe::FilesExist {
            glob: glob.clone(),
            min: 2,
        };
        assert!(evaluate(&snap, &s).is_err(), "not looked for");
        s.files.insert(glob.clone(), 1);
        assert!(evaluate(&snap, &s).expect_err("one").contains("2 wanted"));
        s.files.insert(glob, 2);
        assert!(evaluate(&snap, &s).is_ok());
    }

    #[test]
    fn rfc3339_offsets() {
        let w = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(offset_of("2025-01-01T00:00:01.500000Z", w), Some(1.5));
        assert_eq!(offset_of("nope", w), None);
    }
}
