//! Recording an observation: what changed since the last one (probes and the steady
//! state, kernels, incidents, serve and watchdog pids, alert files) appended to the
//! monitor's [`Timeline`](crate::chaos::measure::Timeline).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::snapshot::{evaluate, text, Snapshot};
use super::Monitor;
use crate::chaos::client::read_serve_json;
use crate::chaos::measure::{
    AlertSeen, IncidentSpan, KernelEvent, PidChange, ProbeChange, SteadyChange,
};

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

impl Monitor {
    pub(super) fn record(&mut self, snap: &Snapshot, t: f64) {
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
                    closed_reason: i
                        .get("closed_reason")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
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
    fn rfc3339_offsets() {
        let w = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(offset_of("2025-01-01T00:00:01.500000Z", w), Some(1.5));
        assert_eq!(offset_of("nope", w), None);
    }
}
