//! The playbook model, as written in YAML: a playbook, its steps, and their settings.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One remediation recipe.
///
/// ```yaml
/// name: restart_kernel
/// description: Restart a hung or failed kernel and check it is healthy again.
/// triggers: [heartbeat_failure]
/// slo: 30s
/// rate_limit: { max: 10, window: 1h }
/// cooldown: 30s
/// steps:
///   - name: restart
///     action: restart_kernel
///     args: { kernel: "{{component}}" }
///   - name: verify
///     action: verify_health
///     retries: 3
///     retry_delay: 1s
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Unique name; incidents and `trigger` rows refer to it.
    pub name: String,
    /// One paragraph for humans.
    #[serde(default)]
    pub description: String,
    /// Trigger names (or failure modes, or `event.emergency` / `event.early_warning`)
    /// this playbook answers when the incident names no playbook.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// How long a run may take; a longer run is recorded as an SLO miss.
    #[serde(default)]
    pub slo: Option<Dur>,
    /// At most this many runs per window (across components).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// After a run for a component, the same playbook does not run again for that
    /// component until this has passed.
    #[serde(default)]
    pub cooldown: Option<Dur>,
    /// Escalate instead of acting.
    #[serde(default)]
    pub requires_approval: bool,
    /// Log each step as it would run instead of running it.
    #[serde(default)]
    pub dry_run: bool,
    /// Capabilities the playbook needs (`snapshots`); when one is missing the playbook
    /// is skipped with a warning instead of failing validation.
    #[serde(default)]
    pub requires: Vec<String>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// How recovery is verified after the steps: overrides of `[playbooks.verify]` and
    /// extra probe steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::verify::VerifyOverrides>,
}

/// `rate_limit: { max: N, window: DURATION }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Runs allowed in the window.
    pub max: u32,
    /// The sliding window.
    pub window: Dur,
}

/// One step: an action with arguments, or a group of steps run in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's name, unique within its playbook.
    pub name: String,
    /// The action (a built-in or a registered one). Exactly one of `action` and
    /// `parallel` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The action's arguments; string values may use `{{component}}`, `{{severity}}`,
    /// `{{incident_id}}`, `{{trigger}}`, `{{failure_mode}}`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub args: serde_json::Map<String, Value>,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    /// Pause between attempts (default 1 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Dur>,
    /// Bound on one attempt (default: `[playbooks] step_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// A failure of this step does not stop the playbook nor fail it.
    #[serde(default)]
    pub continue_on_failure: bool,
    /// Steps run at once; the group waits for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<Step>>,
}

/// The default pause between attempts of a step.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

impl Step {
    /// The pause between attempts.
    pub fn retry_delay(&self) -> Duration {
        self.retry_delay.map_or(DEFAULT_RETRY_DELAY, |d| d.0)
    }
}

/// A duration written as `"30s"`, `"2m 30s"`, `"1h"` (humantime) or a number of
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.0
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"2m\", \"1h 30m\", or seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|s| Dur(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("duration {v} is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Duration::try_from_secs_f64(v).map(Dur).map_err(|_| {
                    E::custom(format!("duration {v} is not a valid number of seconds"))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v.trim()).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "bad duration {v:?} ({e}); write it like \"500ms\", \"30s\", \"2m\" or \"1h\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_from_text_and_numbers() {
        let d: Dur = serde_yaml_ng::from_str("2m 30s").expect("text");
        assert_eq!(d.0, Duration::from_secs(150));
        let d: Dur = serde_yaml_ng::from_str("5").expect("int");
        assert_eq!(d.0, Duration::from_secs(5));
        let d: Dur = serde_yaml_ng::from_str("0.25").expect("float");
        assert_eq!(d.0, Duration::from_millis(250));
        let e = serde_yaml_ng::from_str::<Dur>("soon").expect_err("bad");
        assert!(e.to_string().contains("bad duration"), "{e}");
    }

    #[test]
    fn a_step_rejects_unknown_keys() {
        let e = serde_yaml_ng::from_str::<Step>("name: a\naction: wait\nretires: 2\n")
            .expect_err("typo");
        assert!(e.to_string().contains("retires"), "{e}");
    }
}
