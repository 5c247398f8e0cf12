//! Serve's side of the watchdog's repair records: each repair of serve the watchdog wrote
//! to `watchdog_incidents.jsonl` becomes one incident (component `serve`, trigger
//! `watchdog`), already resolved with `closed_reason: recovered_by_restart`, its
//! `detected_at` the fault, its `resolved_at` the moment the new serve was healthy.
//!
//! Exactly once: the record's sequence number is kept in the incident's
//! `details.watchdog_repair.seq` (the store finds the highest at load) and in
//! `watchdog_incidents.imported` (written atomically after the incidents), and only
//! records past both are imported. Serve imports at start, and the `incident_log`
//! kernel again at each tick when the file has changed: the repair that started this
//! very serve is written only once it answered `/health`.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::model::{ClosedReason, Incident, IncidentStatus, Severity, StepRecord};
use super::store::{IncidentError, IncidentStore, WATCHDOG_DETAILS};
use crate::state::StatePaths;
use crate::watchdog::incident_record::{
    read_imported, read_repairs, repairs_path, write_imported, Cause, Repair,
};

fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The incident a repair record stands for.
pub fn repair_incident(r: &Repair) -> Incident {
    let (failure_mode, severity) = match r.cause {
        Cause::Crash => ("serve_crash", Severity::High),
        Cause::Hang => ("serve_hang", Severity::High),
        Cause::CrashLoop => ("serve_crash_loop", Severity::Critical),
    };
    let mttr = match (parse(&r.detected_at), parse(&r.healthy_at)) {
        (Some(d), Some(h)) => (h - d).num_microseconds().map(|us| us.max(0) as f64 / 1e6),
        _ => None,
    };
    let took = mttr.map_or_else(String::new, |s| format!(" after {s:.2}s"));
    let summary = match r.cause {
        Cause::CrashLoop => format!(
            "serve crash loop ({}; {} failed starts, last: {}); the watchdog paused, then a \
             restart was healthy{took}",
            r.reason,
            r.failed_starts,
            r.last_reason.as_deref().unwrap_or("-")
        ),
        _ => format!(
            "serve {}; the watchdog restarted it, healthy{took}",
            r.reason
        ),
    };
    let step = StepRecord {
        name: "restart".to_owned(),
        action: "restart_serve".to_owned(),
        status: "ok".to_owned(),
        attempts: r.failed_starts.saturating_add(1),
        duration_ms: mttr.map_or(0, |s| (s * 1e3) as u64),
        output: json!({ "pid": r.pid, "new_pid": r.new_pid, "by": "watchdog" }),
        available_before: Some(false),
        available_after: Some(true),
    };
    Incident {
        incident_id: String::new(),
        detected_at: r.detected_at.clone(),
        resolved_at: Some(r.healthy_at.clone()),
        status: IncidentStatus::Resolved,
        failure_mode: failure_mode.to_owned(),
        severity,
        component: "serve".to_owned(),
        trigger: "watchdog".to_owned(),
        playbook: None,
        steps: vec![step],
        mttr_seconds: mttr,
        success: Some(true),
        occurrences: 1,
        summary,
        details: json!({ WATCHDOG_DETAILS: r }),
        closed_reason: Some(ClosedReason::RecoveredByRestart),
    }
}

/// Turns every repair record of the state directory `paths` not yet imported into an
/// incident of `store`; returns how many. Cheap when the file has not changed since
/// the last call (one `stat`).
pub fn import_watchdog_repairs(
    store: &IncidentStore,
    paths: &StatePaths,
) -> Result<usize, IncidentError> {
    let path = repairs_path(paths);
    let io = |source| IncidentError::Io {
        path: path.clone(),
        source,
    };
    let mut cursor = store.imports.lock();
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    if cursor.seen_len == Some(len) {
        return Ok(0);
    }
    let (mut repairs, len) = read_repairs(&path).map_err(io)?;
    repairs.sort_by_key(|r| r.seq);
    let done = cursor.imported.max(read_imported(paths));
    let mut imported = 0;
    let mut result = Ok(());
    for r in repairs.iter().filter(|r| done.is_none_or(|d| r.seq > d)) {
        match store.record_closed(repair_incident(r)) {
            Ok(inc) => {
                tracing::info!(incident = %inc.incident_id, seq = r.seq, cause = ?r.cause,
                    mttr_seconds = ?inc.mttr_seconds, "watchdog repair of serve recorded as an incident");
                cursor.imported = Some(r.seq);
                imported += 1;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if imported > 0 {
        if let Some(seq) = cursor.imported {
            write_imported(paths, seq).map_err(|source| IncidentError::Io {
                path: paths
                    .root()
                    .join(crate::watchdog::incident_record::IMPORTED_FILE),
                source,
            })?;
        }
    }
    result?;
    cursor.seen_len = Some(len);
    Ok(imported)
}

/// [`import_watchdog_repairs`] at serve's start: a failure is logged, never fatal (the
/// `incident_log` kernel tries again at its next tick).
pub fn import_watchdog_repairs_logged(store: &IncidentStore, paths: &StatePaths) {
    if let Err(e) = import_watchdog_repairs(store, paths) {
        tracing::error!(error = %e, "cannot record the watchdog's repairs of serve as incidents");
    }
}
