//! Raising an alert: the alert file, `latest_notification.json`, retention, and handing
//! the alert to the notifiers in the background.

use std::path::Path;

use chrono::{NaiveDateTime, Utc};

use super::{notify, Alert, AlertError, AlertFile, AlertsConfig, LatestNotification, Severity};
use crate::state::{atomic_write, StatePaths};

/// Raises an alert: writes `alerts/<severity>_<YYYYmmdd_HHMMSS>_<n>.json` and
/// `alerts/latest_notification.json` (both atomically), prunes old alert files, and
/// hands the alert to the configured webhook, command and Alertmanager in the background (on the
/// current tokio runtime if there is one, else on a thread of its own). Returns once the
/// files are written.
pub fn raise(
    paths: &StatePaths,
    cfg: &AlertsConfig,
    severity: Severity,
    event_type: &str,
    summary: &str,
    payload: serde_json::Value,
) -> Result<Alert, AlertError> {
    let now = crate::time::now();
    let timestamp = crate::time::rfc3339(now);
    let payload = match payload {
        serde_json::Value::Object(mut m) => {
            m.entry("severity").or_insert(severity.as_str().into());
            m.entry("summary").or_insert(summary.into());
            serde_json::Value::Object(m)
        }
        serde_json::Value::Null => serde_json::json!({
            "severity": severity.as_str(), "summary": summary,
        }),
        other => serde_json::json!({
            "severity": severity.as_str(), "summary": summary, "data": other,
        }),
    };
    let dir = paths.alerts_dir();
    let stem = format!("{}_{}", severity.as_str(), crate::time::compact(now));
    let mut n = 1u32;
    let file = loop {
        let f = dir.join(format!("{stem}_{n}.json"));
        if !f.exists() {
            break f;
        }
        n += 1;
    };
    let record = AlertFile {
        event_type: event_type.to_owned(),
        timestamp: timestamp.clone(),
        payload: payload.clone(),
    };
    write_json(&file, &record)?;
    let latest = LatestNotification {
        severity,
        timestamp: timestamp.clone(),
        event: event_type.to_owned(),
        summary: summary.to_owned(),
        requires_attention: severity == Severity::Critical,
    };
    write_json(&dir.join("latest_notification.json"), &latest)?;
    if let Err(e) = prune(&dir, cfg) {
        tracing::warn!(error = %e, dir = %dir.display(), "alert retention failed");
    }
    let alert = Alert {
        severity,
        event_type: event_type.to_owned(),
        timestamp,
        summary: summary.to_owned(),
        payload,
        file,
    };
    if severity >= cfg.notify_min_severity && (cfg.webhook.is_some() || !cfg.command.is_empty()) {
        dispatch(cfg.clone(), alert.clone());
    }
    // Alertmanager also hears of ends below the minimum severity, so it filters itself.
    super::alertmanager::notify(paths, cfg, &alert);
    Ok(alert)
}

fn dispatch(cfg: AlertsConfig, alert: Alert) {
    let job = async move {
        for e in notify::deliver(&cfg, &alert).await {
            tracing::warn!(error = %e, event = %alert.event_type, "alert notifier failed");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(job);
        }
        Err(_) => {
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(job);
                }
            });
        }
    }
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), AlertError> {
    let err = |source| AlertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| err(e.into()))?;
    bytes.push(b'\n');
    atomic_write(path, &bytes).map_err(err)
}

/// Parses `<severity>_<YYYYmmdd_HHMMSS>_<n>.json` into (time, n).
fn parse_name(name: &str) -> Option<(NaiveDateTime, u32)> {
    let rest = name.strip_suffix(".json")?;
    let rest = ["info_", "warning_", "critical_"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))?;
    let (ts, n) = rest.rsplit_once('_')?;
    let t = NaiveDateTime::parse_from_str(ts, "%Y%m%d_%H%M%S").ok()?;
    Some((t, n.parse().ok()?))
}

/// Deletes alert files older than `keep_for`, then the oldest beyond `keep_files`.
pub(crate) fn prune(dir: &Path, cfg: &AlertsConfig) -> std::io::Result<usize> {
    let mut files: Vec<((NaiveDateTime, u32), std::path::PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        if let Some(key) = e.file_name().to_str().and_then(parse_name) {
            files.push((key, e.path()));
        }
    }
    files.sort();
    let horizon = chrono::Duration::from_std(cfg.keep_for)
        .ok()
        .and_then(|d| Utc::now().naive_utc().checked_sub_signed(d));
    let too_old = horizon
        .map(|h| files.iter().take_while(|((t, _), _)| *t < h).count())
        .unwrap_or(0);
    let too_many = files.len().saturating_sub(cfg.keep_files);
    let drop = too_old.max(too_many);
    for (_, p) in files.iter().take(drop) {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn writes_alert_and_latest_and_keeps_at_most_n() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        let cfg = AlertsConfig {
            keep_files: 3,
            ..AlertsConfig::default()
        };
        for i in 0..5 {
            raise(
                &paths,
                &cfg,
                Severity::Critical,
                "watchdog.crash_loop",
                "serve keeps crashing",
                serde_json::json!({ "i": i }),
            )
            .expect("raise");
        }
        let names: Vec<String> = std::fs::read_dir(paths.alerts_dir())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("critical_"))
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let latest: LatestNotification = serde_json::from_slice(
            &std::fs::read(paths.alerts_dir().join("latest_notification.json")).expect("read"),
        )
        .expect("parse");
        assert!(latest.requires_attention);
        assert_eq!(latest.event, "watchdog.crash_loop");
        let mut kept: Vec<_> = names.iter().filter_map(|n| parse_name(n)).collect();
        kept.sort();
        let newest = paths.alerts_dir().join(format!(
            "critical_{}_{}.json",
            kept[2].0.format("%Y%m%d_%H%M%S"),
            kept[2].1
        ));
        let f: AlertFile =
            serde_json::from_slice(&std::fs::read(newest).expect("read")).expect("parse");
        assert_eq!(f.payload["severity"], "critical");
    }

    #[test]
    fn prunes_by_age() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("info_20000101_000000_1.json"), b"{}").expect("write");
        std::fs::write(d.path().join("unrelated.json"), b"{}").expect("write");
        let cfg = AlertsConfig {
            keep_for: Duration::from_secs(3600),
            ..AlertsConfig::default()
        };
        assert_eq!(prune(d.path(), &cfg).expect("prune"), 1);
        assert!(d.path().join("unrelated.json").exists());
    }
}
