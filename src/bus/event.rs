//! Events and their topics: the names of DESIGN.md's "Events" section.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A bus topic. Serialised as its dotted name (`kernel.restart.success`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Topic {
    /// A kernel's heartbeat is older than its timeout.
    #[serde(rename = "kernel.heartbeat.missed")]
    KernelHeartbeatMissed,
    /// A supervisor begins restarting a child.
    #[serde(rename = "kernel.restart.initiated")]
    KernelRestartInitiated,
    /// A restarted child runs again.
    #[serde(rename = "kernel.restart.success")]
    KernelRestartSuccess,
    /// A restart attempt failed (the child did not start).
    #[serde(rename = "kernel.restart.failed")]
    KernelRestartFailed,
    /// A child exhausted its restart limit and is left down.
    #[serde(rename = "kernel.restart.max_attempts")]
    KernelRestartMaxAttempts,
    /// A critical kernel is down and stays down.
    #[serde(rename = "system.critical_kernel_down")]
    SystemCriticalKernelDown,
    /// An incident was opened.
    #[serde(rename = "event.incident")]
    EventIncident,
    /// Several critical parts are down at once.
    #[serde(rename = "event.emergency")]
    EventEmergency,
    /// A condition is approaching its threshold.
    #[serde(rename = "event.early_warning")]
    EventEarlyWarning,
    /// An incident was resolved.
    #[serde(rename = "incident.resolved")]
    IncidentResolved,
    /// An incident was escalated to a human or an external agent.
    #[serde(rename = "incident.escalated")]
    IncidentEscalated,
    /// A playbook run started.
    #[serde(rename = "playbook.started")]
    PlaybookStarted,
    /// A playbook step finished.
    #[serde(rename = "playbook.step")]
    PlaybookStep,
    /// A playbook run finished.
    #[serde(rename = "playbook.finished")]
    PlaybookFinished,
    /// A component's trust score changed.
    #[serde(rename = "trust.score.update")]
    TrustScoreUpdate,
    /// A snapshot was taken.
    #[serde(rename = "snapshot.created")]
    SnapshotCreated,
    /// A snapshot was restored.
    #[serde(rename = "snapshot.restored")]
    SnapshotRestored,
    /// The watchdog restarted serve.
    #[serde(rename = "grace.restart.success")]
    GraceRestartSuccess,
    /// The watchdog failed to restart serve.
    #[serde(rename = "grace.restart.failed")]
    GraceRestartFailed,
    /// The kill switch changed.
    #[serde(rename = "grace.kill_switch")]
    GraceKillSwitch,
    /// A kernel reported an error (input to the error-burst and repeated-error triggers).
    #[serde(rename = "kernel.error")]
    KernelError,
}

impl Topic {
    /// Every topic, in declaration order.
    pub const ALL: [Topic; 21] = [
        Topic::KernelHeartbeatMissed,
        Topic::KernelRestartInitiated,
        Topic::KernelRestartSuccess,
        Topic::KernelRestartFailed,
        Topic::KernelRestartMaxAttempts,
        Topic::SystemCriticalKernelDown,
        Topic::EventIncident,
        Topic::EventEmergency,
        Topic::EventEarlyWarning,
        Topic::IncidentResolved,
        Topic::IncidentEscalated,
        Topic::PlaybookStarted,
        Topic::PlaybookStep,
        Topic::PlaybookFinished,
        Topic::TrustScoreUpdate,
        Topic::SnapshotCreated,
        Topic::SnapshotRestored,
        Topic::GraceRestartSuccess,
        Topic::GraceRestartFailed,
        Topic::GraceKillSwitch,
        Topic::KernelError,
    ];

    /// The dotted name.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::KernelHeartbeatMissed => "kernel.heartbeat.missed",
            Topic::KernelRestartInitiated => "kernel.restart.initiated",
            Topic::KernelRestartSuccess => "kernel.restart.success",
            Topic::KernelRestartFailed => "kernel.restart.failed",
            Topic::KernelRestartMaxAttempts => "kernel.restart.max_attempts",
            Topic::SystemCriticalKernelDown => "system.critical_kernel_down",
            Topic::EventIncident => "event.incident",
            Topic::EventEmergency => "event.emergency",
            Topic::EventEarlyWarning => "event.early_warning",
            Topic::IncidentResolved => "incident.resolved",
            Topic::IncidentEscalated => "incident.escalated",
            Topic::PlaybookStarted => "playbook.started",
            Topic::PlaybookStep => "playbook.step",
            Topic::PlaybookFinished => "playbook.finished",
            Topic::TrustScoreUpdate => "trust.score.update",
            Topic::SnapshotCreated => "snapshot.created",
            Topic::SnapshotRestored => "snapshot.restored",
            Topic::GraceRestartSuccess => "grace.restart.success",
            Topic::GraceRestartFailed => "grace.restart.failed",
            Topic::GraceKillSwitch => "grace.kill_switch",
            Topic::KernelError => "kernel.error",
        }
    }

    /// The level its record in the log has: errors for what needs a human now,
    /// warnings for failures being handled, info for the rest.
    pub fn log_level(self) -> tracing::Level {
        match self {
            Topic::SystemCriticalKernelDown | Topic::EventEmergency => tracing::Level::ERROR,
            Topic::KernelHeartbeatMissed
            | Topic::KernelRestartFailed
            | Topic::KernelRestartMaxAttempts
            | Topic::IncidentEscalated
            | Topic::GraceRestartFailed => tracing::Level::WARN,
            _ => tracing::Level::INFO,
        }
    }

    /// Parses a dotted name.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether a subscription pattern matches this topic: an exact name, `*`, or a
    /// prefix ending in `.*` (`kernel.restart.*`).
    pub fn matches(self, pattern: &str) -> bool {
        if pattern == "*" {
            return true;
        }
        match pattern.strip_suffix(".*") {
            Some(prefix) => self
                .as_str()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => self.as_str() == pattern,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: a topic, when it happened, the component it concerns, and a JSON payload
/// (each publisher serialises its own payload struct into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The topic.
    pub topic: Topic,
    /// Wall-clock time of publication (RFC 3339, microseconds).
    pub at: String,
    /// The kernel or component the event is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Topic-specific fields.
    pub payload: serde_json::Value,
}

impl Event {
    /// Builds an event stamped now, serialising `payload`.
    pub fn new(topic: Topic, component: Option<&str>, payload: impl Serialize) -> Event {
        Event {
            topic,
            at: crate::time::rfc3339(crate::time::now()),
            component: component.map(str::to_owned),
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for t in Topic::ALL {
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn patterns_match_exact_prefix_and_wildcard() {
        let t = Topic::KernelRestartSuccess;
        assert!(t.matches("kernel.restart.success"));
        assert!(t.matches("kernel.restart.*"));
        assert!(t.matches("kernel.*"));
        assert!(t.matches("*"));
        assert!(!t.matches("kernel.restart"));
        assert!(!t.matches("kernel.re*"));
        assert!(!Topic::KernelError.matches("kernel.restart.*"));
    }
}
