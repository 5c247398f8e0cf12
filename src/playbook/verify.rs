//! Verification: whether the service behind an incident has recovered, decided from a
//! series of steady-state samples taken after its playbook (plain functions, no
//! runtime).
//!
//! As in Kubernetes' readiness (`successThreshold`, `minReadySeconds`): recovery is
//! `successes` good samples in a row that also span `window`. A bad sample starts the
//! streak again. A sample with no evidence (a probe that could not run) neither counts
//! nor breaks the streak: missing data is not health. Past `timeout` without a passing
//! streak the verdict is "not recovered", with the last bad sample's reason, or
//! "unverifiable" when no sample ever carried evidence.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::Dur;

/// How an incident's recovery is verified: `[playbooks.verify]` in `grace.toml`, and a
/// playbook's own `verify:` block, which overrides it key by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySettings {
    /// Time between two samples.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Good samples in a row needed.
    pub successes: u32,
    /// The good samples must also span this long (first to last).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Give up after this long (counted from the playbook's end): the incident fails.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            interval: Duration::from_secs(1),
            successes: 3,
            window: Duration::from_secs(3),
            timeout: Duration::from_secs(60),
        }
    }
}

impl VerifySettings {
    /// These settings with a playbook's overrides applied.
    pub fn with(self, o: &VerifyOverrides) -> VerifySettings {
        VerifySettings {
            interval: o.interval.map_or(self.interval, |d| d.0),
            successes: o.successes.unwrap_or(self.successes),
            window: o.window.map_or(self.window, |d| d.0),
            timeout: o.timeout.map_or(self.timeout, |d| d.0),
        }
    }

    /// The timeout actually used: never shorter than a passing streak can take.
    pub fn effective_timeout(&self) -> Duration {
        let streak = self.interval * self.successes.saturating_sub(1);
        self.timeout.max(self.window.max(streak) + self.interval)
    }
}

/// A playbook's `verify:` block: settings that override `[playbooks.verify]`, and steps
/// whose actions are run as extra probes at every sample.
///
/// ```yaml
/// verify:
///   window: 10s
///   steps:
///     - name: probe
///       action: verify_health
///       args: { kernel: "{{component}}" }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyOverrides {
    /// Time between two samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Dur>,
    /// Good samples in a row needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successes: Option<u32>,
    /// The span the good samples must cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    /// When to give up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What the component (a kernel) must be for the service to count as recovered:
    /// `running` (the default), or `stopped` for a playbook whose remedy is to take it
    /// out of service (quarantine), or `any` to leave it out of the check.
    #[serde(default)]
    pub component: ComponentExpectation,
    /// Extra probes: each step's action runs at every sample; a failure is a bad
    /// sample, a skip is no evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<super::model::Step>,
}

/// What verification expects of the incident's component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentExpectation {
    /// Running and answering.
    #[default]
    Running,
    /// Stopped on purpose and staying down (contained).
    Stopped,
    /// Not checked.
    Any,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "snake_case")]
pub enum Probe {
    /// Healthy.
    Good(String),
    /// Not healthy, and why.
    Bad(String),
    /// Could not tell, and why.
    Unknown(String),
}

/// One sample: every probe's finding, named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// (what was probed, what it found).
    pub probes: Vec<(String, Probe)>,
}

impl Sample {
    /// Adds a probe's finding.
    pub fn add(&mut self, what: impl Into<String>, p: Probe) {
        self.probes.push((what.into(), p));
    }

    /// The sample's verdict: bad if any probe is bad, good if at least one is good and
    /// none bad, unknown otherwise.
    pub fn verdict(&self) -> Probe {
        if let Some((what, Probe::Bad(why))) =
            self.probes.iter().find(|(_, p)| matches!(p, Probe::Bad(_)))
        {
            return Probe::Bad(format!("{what}: {why}"));
        }
        if self.probes.iter().any(|(_, p)| matches!(p, Probe::Good(_))) {
            let good: Vec<&str> = self
                .probes
                .iter()
                .filter(|(_, p)| matches!(p, Probe::Good(_)))
                .map(|(w, _)| w.as_str())
                .collect();
            return Probe::Good(good.join(", "));
        }
        let why: Vec<String> = self
            .probes
            .iter()
            .map(|(w, p)| match p {
                Probe::Unknown(r) => format!("{w}: {r}"),
                _ => w.clone(),
            })
            .collect();
        Probe::Unknown(if why.is_empty() {
            "nothing to check".to_owned()
        } else {
            why.join("; ")
        })
    }
}

/// Where verification stands after a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep sampling.
    Pending,
    /// Recovered: the passing streak began at `since_ms` (monotonic ms).
    Recovered {
        /// The first good sample of the streak.
        since_ms: u64,
    },
    /// The timeout passed without a passing streak.
    NotRecovered {
        /// The last bad sample's reason (or why the streak fell short).
        reason: String,
    },
    /// The timeout passed and no sample carried any evidence.
    Unverifiable {
        /// What the probes said.
        reason: String,
    },
}

/// The running tally of one verification.
#[derive(Debug, Clone)]
pub struct Streak {
    settings: VerifySettings,
    started_ms: u64,
    since_ms: Option<u64>,
    good: u32,
    evidence: bool,
    last_bad: Option<String>,
    last_unknown: Option<String>,
    samples: u32,
}

impl Streak {
    /// A verification that starts at `now_ms`.
    pub fn new(settings: VerifySettings, now_ms: u64) -> Streak {
        Streak {
            settings,
            started_ms: now_ms,
            since_ms: None,
            good: 0,
            evidence: false,
            last_bad: None,
            last_unknown: None,
            samples: 0,
        }
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Feeds one sample's verdict taken at `now_ms`.
    pub fn observe(&mut self, p: &Probe, now_ms: u64) -> Verdict {
        self.samples += 1;
        match p {
            Probe::Good(_) => {
                self.evidence = true;
                let since = *self.since_ms.get_or_insert(now_ms);
                self.good += 1;
                let spans = now_ms.saturating_sub(since) >= self.settings.window.as_millis() as u64;
                if self.good >= self.settings.successes.max(1) && spans {
                    return Verdict::Recovered { since_ms: since };
                }
            }
            Probe::Bad(why) => {
                self.evidence = true;
                self.since_ms = None;
                self.good = 0;
                self.last_bad = Some(why.clone());
            }
            Probe::Unknown(why) => self.last_unknown = Some(why.clone()),
        }
        let limit = self.settings.effective_timeout().as_millis() as u64;
        if now_ms.saturating_sub(self.started_ms) < limit {
            return Verdict::Pending;
        }
        if !self.evidence {
            return Verdict::Unverifiable {
                reason: self
                    .last_unknown
                    .clone()
                    .unwrap_or_else(|| "nothing to check".to_owned()),
            };
        }
        let reason = match (&self.last_bad, self.since_ms) {
            (Some(bad), None) => bad.clone(),
            (Some(bad), Some(_)) => {
                format!(
                    "recovering but not yet steady ({} good samples); last failure: {bad}",
                    self.good
                )
            }
            (None, _) => format!(
                "{} good samples, {} needed over {}",
                self.good,
                self.settings.successes,
                humantime::format_duration(self.settings.window)
            ),
        };
        Verdict::NotRecovered { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings() -> VerifySettings {
        VerifySettings {
            interval: Duration::from_millis(100),
            successes: 3,
            window: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
        }
    }

    fn good() -> Probe {
        Probe::Good("kernel".into())
    }

    #[test]
    fn recovery_needs_the_successes_and_the_window() {
        let mut s = Streak::new(settings(), 0);
        assert_eq!(s.observe(&good(), 100), Verdict::Pending);
        assert_eq!(s.observe(&good(), 200), Verdict::Pending);
        // Three good samples, but they span 200 ms of the 300 needed.
        assert_eq!(s.observe(&good(), 300), Verdict::Pending);
        assert_eq!(
            s.observe(&good(), 400),
            Verdict::Recovered { since_ms: 100 }
        );
    }

    #[test]
    fn a_bad_sample_starts_the_streak_again_and_unknown_does_not() {
        let mut s = Streak::new(settings(), 0);
        s.observe(&good(), 100);
        s.observe(&Probe::Bad("down".into()), 200);
        s.observe(&good(), 300);
        s.observe(&Probe::Unknown("no probe".into()), 400);
        s.observe(&good(), 500);
        s.observe(&good(), 600);
        assert_eq!(
            s.observe(&good(), 700),
            Verdict::Recovered { since_ms: 300 }
        );
    }

    #[test]
    fn past_the_timeout_the_last_failure_is_the_reason() {
        let mut s = Streak::new(settings(), 0);
        assert_eq!(
            s.observe(&Probe::Bad("kernel x is failed".into()), 1000),
            Verdict::Pending
        );
        match s.observe(&Probe::Bad("kernel x is failed".into()), 2000) {
            Verdict::NotRecovered { reason } => assert_eq!(reason, "kernel x is failed"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn no_evidence_at_all_is_unverifiable_not_recovered() {
        let mut s = Streak::new(settings(), 0);
        let v = s.observe(&Probe::Unknown("nothing to check".into()), 5000);
        assert!(matches!(v, Verdict::Unverifiable { .. }), "{v:?}");
    }

    #[test]
    fn a_sample_is_bad_if_any_probe_is_and_unknown_without_evidence() {
        let mut s = Sample::default();
        s.add("condition", Probe::Good("clear".into()));
        s.add("kernel web", Probe::Bad("stopped".into()));
        assert_eq!(s.verdict(), Probe::Bad("kernel web: stopped".into()));
        let mut s = Sample::default();
        s.add("condition", Probe::Unknown("trigger down".into()));
        assert!(matches!(s.verdict(), Probe::Unknown(_)));
        s.add("kernel web", Probe::Good("answers".into()));
        assert!(matches!(s.verdict(), Probe::Good(_)));
    }

    #[test]
    fn the_timeout_is_never_shorter_than_a_streak() {
        let s = VerifySettings {
            interval: Duration::from_secs(1),
            successes: 10,
            window: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(s.effective_timeout(), Duration::from_secs(10));
    }

    proptest! {
        /// Whatever the samples, a recovery is only declared after `successes` good
        /// samples in a row spanning the window, and the verdict comes by the timeout.
        #[test]
        fn recovered_only_after_a_full_streak(seq in prop::collection::vec(0u8..3, 1..80)) {
            let st = settings();
            let mut s = Streak::new(st, 0);
            let mut run: Vec<u64> = Vec::new();
            let mut ended = false;
            for (i, k) in seq.iter().enumerate() {
                let now = (i as u64 + 1) * 100;
                let p = match k { 0 => good(), 1 => Probe::Bad("x".into()), _ => Probe::Unknown("y".into()) };
                match k { 0 => run.push(now), 1 => run.clear(), _ => {} }
                match s.observe(&p, now) {
                    Verdict::Recovered { since_ms } => {
                        prop_assert!(run.len() as u32 >= st.successes);
                        prop_assert_eq!(since_ms, run[0]);
                        prop_assert!(now - since_ms >= st.window.as_millis() as u64);
                        ended = true;
                        break;
                    }
                    Verdict::Pending => prop_assert!(now < st.effective_timeout().as_millis() as u64),
                    _ => { ended = true; break; }
                }
            }
            if seq.len() as u64 * 100 >= st.effective_timeout().as_millis() as u64 {
                prop_assert!(ended);
            }
        }
    }
}
