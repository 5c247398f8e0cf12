//! The incident figures of `/metrics`: the incidents (kept in memory and in
//! `incidents.jsonl`) and their MTTR, the triggers' checks and publications, the trust
//! scores, and the playbook runs with their durations and missed SLOs.

use std::collections::BTreeMap;
use std::fmt::Result;

use crate::http::collector::{Buckets, Tallies, MTTR_BUCKETS};
use crate::http::dashboard::{trigger_name, TriggerView};
use crate::http::exposition::Families;
use crate::incident::{Incident, IncidentStatus, Summary};

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

pub(super) fn incidents(
    f: &mut Families<'_>,
    known: &[Incident],
    s: &Summary,
    mttr: Option<&Buckets>,
) -> Result {
    let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for inc in known {
        *by.entry((inc.trigger.as_str(), status_name(inc.status)))
            .or_insert(0) += 1;
    }
    let kept: Vec<_> = by
        .iter()
        .map(|((trigger, status), n)| ([("trigger", *trigger), ("status", *status)], *n))
        .collect();
    f.gauge(
        "grace_incidents_recent",
        "Incidents kept in memory (open and the latest closed) by trigger and current status.",
        kept.iter().map(|(l, n)| (&l[..], *n)),
    )?;
    f.counter(
        "grace_incidents",
        "Incidents recorded in incidents.jsonl.",
        [(&[][..], s.total)],
    )?;
    let b = &s.by_status;
    let recorded = [
        ("open", b.open),
        ("mitigating", b.mitigating),
        ("resolved", b.resolved),
        ("escalated", b.escalated),
        ("failed", b.failed),
    ]
    .map(|(st, n)| ([("status", st)], n));
    f.gauge(
        "grace_incidents_recorded",
        "Incidents recorded in incidents.jsonl by current status.",
        recorded.iter().map(|(l, n)| (&l[..], *n)),
    )?;
    f.gauge(
        "grace_incidents_open",
        "Incidents open or mitigating.",
        [(&[][..], b.open + b.mitigating)],
    )?;
    let mttr = mttr.cloned().unwrap_or_else(|| Buckets::new(&MTTR_BUCKETS));
    f.histogram(
        "grace_incident_mttr_seconds",
        "Time from detection to closing of the incidents closed since serve started.",
        [(&[][..], mttr.data())],
    )
}

pub(super) fn triggers(f: &mut Families<'_>, views: &[TriggerView]) -> Result {
    for (name, key, help) in [
        (
            "grace_trigger_checks",
            "checks",
            "Checks each trigger has run.",
        ),
        (
            "grace_trigger_published",
            "published",
            "Incidents and warnings each trigger has published.",
        ),
        (
            "grace_trigger_suppressed",
            "suppressed",
            "Publications each trigger held back (deduplication, flapping).",
        ),
    ] {
        let samples = views.iter().filter_map(|v| {
            let n = v.stats.as_ref()?.get(key)?.as_u64()?;
            Some((trigger_name(&v.status.name), n))
        });
        f.counter_by(name, help, "trigger", samples)?;
    }
    Ok(())
}

pub(super) fn trust(f: &mut Families<'_>, scores: &BTreeMap<String, f64>) -> Result {
    f.gauge_by(
        "grace_trust_score",
        "Trust score of each component, 0 to 1.",
        "component",
        scores.iter().map(|(c, v)| (c.as_str(), *v)),
    )
}

pub(super) fn playbooks(f: &mut Families<'_>, t: &Tallies) -> Result {
    let runs: Vec<_> = t
        .playbook_runs
        .iter()
        .map(|((p, o), n)| ([("playbook", p.as_str()), ("outcome", *o)], *n))
        .collect();
    f.counter(
        "grace_playbook_runs",
        "Playbook runs by playbook and outcome.",
        runs.iter().map(|(l, n)| (&l[..], *n)),
    )?;
    let durations: Vec<_> = t
        .playbook_durations
        .iter()
        .map(|(p, b)| ([("playbook", p.as_str())], b.data()))
        .collect();
    f.histogram(
        "grace_playbook_duration_seconds",
        "Playbook run durations.",
        durations.iter().map(|(l, d)| (&l[..], d.clone())),
    )?;
    f.counter_by(
        "grace_playbook_slo_missed",
        "Playbook runs that took longer than their SLO.",
        "playbook",
        t.playbook_slo_missed.iter().map(|(p, n)| (p.as_str(), *n)),
    )
}
