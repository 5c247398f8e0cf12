//! The `[playbooks]` section of `grace.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Settings of the playbook section.
///
/// ```toml
/// [playbooks]
/// dir = "playbooks"            # YAML files here override or add to the defaults
/// dry_run = false              # log each step instead of running it
/// max_concurrent = 4           # playbook runs at once
/// step_timeout = "30s"         # a step without its own timeout
/// disruption_budget = 1        # components automation may hold down at once
/// escalate_command = "notify-oncall.sh"
/// escalate_webhook = "http://127.0.0.1:9000/escalate"
///
/// [playbooks.verify]           # how recovery is verified after a playbook
/// interval = "1s"
/// successes = 3                # good samples in a row
/// window = "3s"                # ... spanning at least this long
/// timeout = "60s"              # then the incident fails
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybooksConfig {
    /// Directory of playbook YAML files, relative to the config file. None: `playbooks/`
    /// beside the config file when it exists; the embedded defaults always load first.
    pub dir: Option<PathBuf>,
    /// Log each step as it would run and record it as `dry_run`, for every playbook.
    pub dry_run: bool,
    /// How many playbook runs may be in progress at once; more wait their turn.
    pub max_concurrent: usize,
    /// The timeout of a step that sets none.
    #[serde(with = "humantime_serde")]
    pub step_timeout: Duration,
    /// Run by the `escalate` action and when a playbook fails (through `sh -c`, with the
    /// incident in its environment like the `exec` action).
    pub escalate_command: Option<String>,
    /// POSTed the incident as JSON by the `escalate` action and when a playbook fails.
    pub escalate_webhook: Option<String>,
    /// How long an HTTP call of `webhook` or `escalate` may take.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// `resource_cleanup` removes files older than this from `logs/`, `alerts/` and
    /// `diagnostics/` (a step's `older_than` argument overrides it).
    #[serde(with = "humantime_serde")]
    pub cleanup_retention: Duration,
    /// How many components automation may hold disrupted (stopped, quarantined, shed)
    /// at once; a disruptive step past it is refused.
    pub disruption_budget: usize,
    /// How recovery is verified after a playbook.
    pub verify: super::verify::VerifySettings,
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        PlaybooksConfig {
            dir: None,
            dry_run: false,
            max_concurrent: 4,
            step_timeout: Duration::from_secs(30),
            escalate_command: None,
            escalate_webhook: None,
            webhook_timeout: Duration::from_secs(10),
            cleanup_retention: Duration::from_secs(7 * 24 * 3600),
            disruption_budget: 1,
            verify: Default::default(),
        }
    }
}

impl PlaybooksConfig {
    /// The playbook directory of a configuration read from `config_file`: `dir`,
    /// relative to the config file's directory; without `dir`, `playbooks/` beside the
    /// config file when it exists; else none (the embedded defaults only).
    pub fn resolve_dir(&self, config_file: Option<&Path>) -> Option<PathBuf> {
        let base = config_file
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match &self.dir {
            Some(d) => Some(base.join(d)),
            None => {
                let beside = base.join("playbooks");
                (config_file.is_some() && beside.is_dir()).then_some(beside)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_default_and_unknown_keys_are_rejected() {
        let c: PlaybooksConfig = toml::from_str("").expect("empty");
        assert_eq!(c, PlaybooksConfig::default());
        let c: PlaybooksConfig =
            toml::from_str("max_concurrent = 2\nstep_timeout = \"5s\"").expect("parse");
        assert_eq!(c.max_concurrent, 2);
        assert_eq!(c.step_timeout, Duration::from_secs(5));
        assert!(toml::from_str::<PlaybooksConfig>("max_concurent = 2").is_err());
    }

    #[test]
    fn the_directory_is_relative_to_the_config_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let file = d.path().join("grace.toml");
        let c = PlaybooksConfig::default();
        assert_eq!(c.resolve_dir(Some(&file)), None, "no playbooks/ yet");
        assert_eq!(c.resolve_dir(None), None, "embedded config: defaults only");
        std::fs::create_dir(d.path().join("playbooks")).expect("mkdir");
        assert_eq!(c.resolve_dir(Some(&file)), Some(d.path().join("playbooks")));
        let c = PlaybooksConfig {
            dir: Some("custom".into()),
            ..PlaybooksConfig::default()
        };
        assert_eq!(c.resolve_dir(Some(&file)), Some(d.path().join("custom")));
    }
}
