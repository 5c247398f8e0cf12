//! The incident figures of `/metrics`: the incidents (kept in memory and in
//! `incidents.jsonl`) and their MTTR, the triggers' checks and publications, the trust
//! scores, and the playbook runs with their durations and missed SLOs.

use std::collections::BTreeMap;

use super::Inputs;
use crate::http::collector::{Buckets, Tallies, MTTR_BUCKETS};
use crate::http::dashboard::{trigger_name, TriggerView};
use crate::http::exposition::Exposition;
use crate::incident::IncidentStatus;

fn status_name(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "open",
        IncidentStatus::Mitigating => "mitigating",
        IncidentStatus::Verifying => "verifying",
        IncidentStatus::Resolved => "resolved",
        IncidentStatus::Escalated => "escalated",
        IncidentStatus::Failed => "failed",
    }
}

pub(super) fn incidents(e: &mut Exposition, i: &Inputs<'_>) {
    let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for inc in i.incidents {
        *by.entry((inc.trigger.as_str(), status_name(inc.status)))
            .or_insert(0) += 1;
    }
    e.family(
        "grace_incidents",
        "gauge",
        "Incidents kept in memory (open and recent) by trigger and current status.",
    );
    for ((trigger, status), n) in &by {
        e.sample(
            "grace_incidents",
            &[("trigger", trigger), ("status", status)],
            *n as f64,
        );
    }
    let s = &i.summary;
    e.family(
        "grace_incidents_total",
        "gauge",
        "Every incident of incidents.jsonl by current status.",
    );
    let b = &s.by_status;
    for (status, n) in [
        ("open", b.open),
        ("mitigating", b.mitigating),
        ("resolved", b.resolved),
        ("escalated", b.escalated),
        ("failed", b.failed),
    ] {
        e.sample("grace_incidents_total", &[("status", status)], n as f64);
    }
    e.family(
        "grace_incidents_open",
        "gauge",
        "Incidents open or mitigating.",
    );
    e.sample("grace_incidents_open", &[], (b.open + b.mitigating) as f64);
    e.family(
        "grace_incident_mttr_summary_seconds",
        "gauge",
        "MTTR over every closed incident of incidents.jsonl (p50, p95, max).",
    );
    for (stat, v) in [
        ("p50", s.mttr_p50_seconds),
        ("p95", s.mttr_p95_seconds),
        ("max", s.mttr_max_seconds),
    ] {
        if let Some(v) = v {
            e.sample("grace_incident_mttr_summary_seconds", &[("stat", stat)], v);
        }
    }
    let empty = Buckets::new(&MTTR_BUCKETS);
    let m = i.tallies.mttr.as_ref().unwrap_or(&empty);
    e.family(
        "grace_incident_mttr_seconds",
        "histogram",
        "Time from detection to closing of the incidents closed since serve started.",
    );
    e.histogram(
        "grace_incident_mttr_seconds",
        &[],
        m.bounds,
        &m.le,
        m.sum,
        m.count,
    );
}

pub(super) fn triggers(e: &mut Exposition, views: &[TriggerView]) {
    type Key = (&'static str, &'static str, &'static str);
    let families: [Key; 3] = [
        (
            "grace_trigger_checks_total",
            "checks",
            "Checks each trigger has run.",
        ),
        (
            "grace_trigger_published_total",
            "published",
            "Incidents and warnings each trigger has published.",
        ),
        (
            "grace_trigger_suppressed_total",
            "suppressed",
            "Publications each trigger held back (deduplication, flapping).",
        ),
    ];
    for (name, key, help) in families {
        e.family(name, "counter", help);
        for v in views {
            if let Some(n) = v
                .stats
                .as_ref()
                .and_then(|s| s.get(key))
                .and_then(|n| n.as_f64())
            {
                e.sample(name, &[("trigger", trigger_name(&v.status.name))], n);
            }
        }
    }
}

pub(super) fn trust(e: &mut Exposition, scores: &BTreeMap<String, f64>) {
    e.family(
        "grace_trust_score",
        "gauge",
        "Trust score of each component, 0 to 1.",
    );
    for (c, v) in scores {
        e.sample("grace_trust_score", &[("component", c)], *v);
    }
}

pub(super) fn playbooks(e: &mut Exposition, t: &Tallies) {
    e.family(
        "grace_playbook_runs_total",
        "counter",
        "Playbook runs by playbook and outcome.",
    );
    for ((p, o), n) in &t.playbook_runs {
        e.sample(
            "grace_playbook_runs_total",
            &[("playbook", p), ("outcome", o)],
            *n as f64,
        );
    }
    e.family(
        "grace_playbook_duration_seconds",
        "histogram",
        "Playbook run durations.",
    );
    for (p, b) in &t.playbook_durations {
        e.histogram(
            "grace_playbook_duration_seconds",
            &[("playbook", p)],
            b.bounds,
            &b.le,
            b.sum,
            b.count,
        );
    }
    e.family(
        "grace_playbook_slo_missed_total",
        "counter",
        "Playbook runs that took longer than their SLO.",
    );
    for (p, n) in &t.playbook_slo_missed {
        e.sample(
            "grace_playbook_slo_missed_total",
            &[("playbook", p)],
            *n as f64,
        );
    }
}
