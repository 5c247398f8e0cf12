//! A Grace alert as Alertmanager's API v2 receives it (labels, annotations, `startsAt`,
//! `endsAt`, `generatorURL`), and what the alert does to the alerts still firing
//! ([`Change`]): fire until its incident closes, end its incident's alerts, or fire for a
//! bounded time (an event).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerts::{Alert, Severity};

/// The event type of the alert raised when an incident closes: it ends the incident's
/// alerts.
pub const INCIDENT_CLOSED: &str = "incident.closed";
/// An escalation hands an incident to a human: it stays an event (held for
/// `alertmanager_event_hold`) even though its incident closes right after it.
pub const INCIDENT_ESCALATED: &str = "incident.escalated";

/// One alert of `POST /api/v2/alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// What identifies the alert: `alertname`, `severity`, `component`, `instance`, and
    /// `incident_id`, `trigger`, `failure_mode`, `incident_severity` when known.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `event`.
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    pub starts_at: String,
    /// When it ends; absent while it fires with no known end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// Where to look: the dashboard.
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}

/// Where alerts come from and how they are posted: the same for every alert of a
/// process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The `instance` label.
    pub instance: String,
    /// The `generatorURL`.
    pub generator_url: Option<String>,
    /// How long an event stays firing.
    pub event_hold: Duration,
    /// Alerts below this severity are not posted (an end always is).
    pub min_severity: Severity,
}

/// What one Grace alert does in Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An alert of an open incident: it fires (posted again and again, no `endsAt`)
    /// until the incident closes.
    Fire {
        /// The incident.
        incident_id: String,
        /// The alert.
        alert: PostableAlert,
    },
    /// The incident closed at `at`: its firing alerts end then. `notice` is the
    /// closing alert itself, posted as an event when the incident did not recover.
    End {
        /// The incident.
        incident_id: String,
        /// When it closed (RFC 3339).
        at: String,
        /// The closing alert, when a human should hear of it.
        notice: Option<PostableAlert>,
    },
    /// An alert of no open incident: fires once, ends by itself after the hold.
    Event(PostableAlert),
}

/// What `alert` does in Alertmanager; `None` when it is below the minimum severity and
/// ends nothing.
pub fn change(alert: &Alert, origin: &Origin) -> Option<Change> {
    let posted = alert.severity >= origin.min_severity;
    let incident = str_field(&alert.payload, "incident_id");
    match incident {
        Some(id) if alert.event_type == INCIDENT_CLOSED => {
            let recovered = str_field(&alert.payload, "status") == Some("resolved");
            Some(Change::End {
                incident_id: id.to_owned(),
                at: alert.timestamp.clone(),
                notice: (posted && !recovered).then(|| event(alert, origin)),
            })
        }
        Some(id) if posted && alert.event_type != INCIDENT_ESCALATED => Some(Change::Fire {
            incident_id: id.to_owned(),
            alert: postable(alert, origin),
        }),
        _ if posted => Some(Change::Event(event(alert, origin))),
        _ => None,
    }
}

/// `alert` as an event: ends `event_hold` after it was raised.
fn event(alert: &Alert, origin: &Origin) -> PostableAlert {
    let mut p = postable(alert, origin);
    let start = chrono::DateTime::parse_from_rfc3339(&alert.timestamp)
        .map_or_else(|_| crate::time::now(), |t| t.with_timezone(&chrono::Utc));
    let hold = chrono::Duration::from_std(origin.event_hold).unwrap_or(chrono::Duration::MAX);
    let end = start.checked_add_signed(hold).unwrap_or(start);
    p.ends_at = Some(crate::time::rfc3339(end));
    p
}

/// `alert` with its labels and annotations, firing from when it was raised.
fn postable(alert: &Alert, origin: &Origin) -> PostableAlert {
    let p = &alert.payload;
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_owned(), alertname(&alert.event_type));
    labels.insert("severity".to_owned(), alert.severity.as_str().to_owned());
    labels.insert("instance".to_owned(), origin.instance.clone());
    let component = str_field(p, "component")
        .or_else(|| alert.event_type.split('.').next())
        .unwrap_or("grace");
    labels.insert("component".to_owned(), component.to_owned());
    for (label, field) in [
        ("incident_id", "incident_id"),
        ("trigger", "trigger"),
        ("failure_mode", "failure_mode"),
        ("incident_severity", "severity_of_incident"),
    ] {
        if let Some(v) = str_field(p, field) {
            labels.insert(label.to_owned(), v.to_owned());
        }
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_owned(), alert.summary.clone());
    annotations.insert("description".to_owned(), description(p));
    annotations.insert("event".to_owned(), alert.event_type.clone());
    PostableAlert {
        labels,
        annotations,
        starts_at: alert.timestamp.clone(),
        ends_at: None,
        generator_url: origin.generator_url.clone(),
    }
}

/// `incident.opened` → `GraceIncidentOpened`, `watchdog.crash_loop` →
/// `GraceWatchdogCrashLoop`.
pub fn alertname(event_type: &str) -> String {
    let mut name = String::from("Grace");
    for word in event_type.split(['.', '_', '-']).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

/// The payload's details, `key=value` in key order (its summary and severity are
/// annotations and labels already).
fn description(payload: &Value) -> String {
    let Value::Object(m) = payload else {
        return payload.to_string();
    };
    let mut parts: Vec<String> = m
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "summary" | "severity") && !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    parts.sort();
    parts.join(", ")
}

fn str_field<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key)?.as_str().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Origin {
        Origin {
            instance: "host-a".to_owned(),
            generator_url: Some("http://127.0.0.1:8000/".to_owned()),
            event_hold: Duration::from_secs(3600),
            min_severity: Severity::Warning,
        }
    }

    fn alert(severity: Severity, event_type: &str, payload: Value) -> Alert {
        Alert {
            severity,
            event_type: event_type.to_owned(),
            timestamp: "2025-01-01T00:00:00.000000Z".to_owned(),
            summary: "something happened".to_owned(),
            payload,
            file: "x.json".into(),
        }
    }

    #[test]
    fn an_incident_alert_fires_with_its_labels() {
        let a = alert(
            Severity::Warning,
            "incident.opened",
            json!({"incident_id": "inc_1", "component": "worker_pool", "trigger": "heartbeat_failure",
                   "severity_of_incident": "high", "summary": "s", "severity": "warning"}),
        );
        let Some(Change::Fire { incident_id, alert }) = change(&a, &origin()) else {
            panic!("not firing");
        };
        assert_eq!(incident_id, "inc_1");
        assert_eq!(alert.labels["alertname"], "GraceIncidentOpened");
        assert_eq!(alert.labels["severity"], "warning");
        assert_eq!(alert.labels["component"], "worker_pool");
        assert_eq!(alert.labels["incident_id"], "inc_1");
        assert_eq!(alert.labels["incident_severity"], "high");
        assert_eq!(alert.labels["instance"], "host-a");
        assert_eq!(alert.ends_at, None);
        assert_eq!(
            alert.annotations["description"],
            "component=worker_pool, incident_id=inc_1, severity_of_incident=high, trigger=heartbeat_failure"
        );
        let json = serde_json::to_value(&alert).expect("json");
        assert_eq!(json["startsAt"], "2025-01-01T00:00:00.000000Z");
        assert_eq!(json["generatorURL"], "http://127.0.0.1:8000/");
        assert!(json.get("endsAt").is_none());
    }

    #[test]
    fn closing_ends_and_tells_only_of_what_did_not_recover() {
        let closed = |status: &str| {
            alert(
                Severity::Warning,
                INCIDENT_CLOSED,
                json!({"incident_id": "inc_1", "status": status}),
            )
        };
        match change(&closed("resolved"), &origin()) {
            Some(Change::End {
                incident_id,
                at,
                notice: None,
            }) => {
                assert_eq!(
                    (incident_id.as_str(), at.as_str()),
                    ("inc_1", "2025-01-01T00:00:00.000000Z")
                );
            }
            other => panic!("{other:?}"),
        }
        let Some(Change::End {
            notice: Some(n), ..
        }) = change(&closed("failed"), &origin())
        else {
            panic!("no notice");
        };
        assert_eq!(n.ends_at.as_deref(), Some("2025-01-01T01:00:00.000000Z"));
        // An info closing below the minimum still ends what fired.
        let mut info = closed("resolved");
        info.severity = Severity::Info;
        assert!(matches!(
            change(&info, &origin()),
            Some(Change::End { notice: None, .. })
        ));
    }

    #[test]
    fn events_are_held_and_low_severities_dropped() {
        let crash = alert(Severity::Critical, "watchdog.crash_loop", json!({"pid": 7}));
        let Some(Change::Event(e)) = change(&crash, &origin()) else {
            panic!("not an event");
        };
        assert_eq!(e.labels["alertname"], "GraceWatchdogCrashLoop");
        assert_eq!(e.labels["component"], "watchdog");
        assert_eq!(e.ends_at.as_deref(), Some("2025-01-01T01:00:00.000000Z"));
        let esc = alert(
            Severity::Critical,
            INCIDENT_ESCALATED,
            json!({"incident_id": "inc_1"}),
        );
        assert!(matches!(change(&esc, &origin()), Some(Change::Event(_))));
        let note = alert(
            Severity::Info,
            "playbook.notify",
            json!({"incident_id": "inc_1"}),
        );
        assert_eq!(change(&note, &origin()), None);
    }
}
