//! Loading playbooks: the embedded defaults, then the YAML files of the configured
//! directory (which override defaults of the same name or add new ones), each
//! validated with file and line; and choosing the playbook for an incident.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::action::ActionRegistry;
use super::defaults::DEFAULT_PLAYBOOKS;
use super::locate::Locator;
use super::model::Playbook;
use super::validate::{parse_playbook, Parsed};
use crate::bus::Topic;
use crate::config::ConfigError;
use crate::incident::IncidentDraft;

/// A playbook left out because a capability it requires is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPlaybook {
    /// Its name.
    pub name: String,
    /// Where it came from.
    pub file: String,
    /// Why it was left out.
    pub reason: String,
}

/// The loaded playbooks, and how incidents are matched to them.
#[derive(Debug, Clone, Default)]
pub struct PlaybookSet {
    playbooks: BTreeMap<String, Arc<Playbook>>,
    files: HashMap<String, String>,
    by_trigger: HashMap<String, String>,
    skipped: Vec<SkippedPlaybook>,
}

impl PlaybookSet {
    /// The playbook named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Playbook>> {
        self.playbooks.get(name).cloned()
    }

    /// Every playbook's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.playbooks.keys().map(String::as_str).collect()
    }

    /// Number of playbooks loaded.
    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    /// Whether none is loaded.
    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// The file a playbook was loaded from (`<embedded>/...` for a default).
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// Playbooks left out for a missing capability.
    pub fn skipped(&self) -> &[SkippedPlaybook] {
        &self.skipped
    }

    /// The playbook answering `key` (a trigger, failure mode or topic name).
    pub fn for_trigger(&self, key: &str) -> Option<Arc<Playbook>> {
        self.by_trigger.get(key).and_then(|n| self.get(n))
    }

    /// Chooses the playbook for an incident published on `topic`: the draft's own
    /// `playbook` if set; else one answering the topic (`event.emergency`,
    /// `event.early_warning`), the trigger, or the failure mode, in that order.
    pub fn select(&self, draft: &IncidentDraft, topic: Topic) -> Result<Arc<Playbook>, String> {
        if let Some(name) = &draft.playbook {
            return self.get(name).ok_or_else(|| {
                let why = match self.skipped.iter().find(|s| &s.name == name) {
                    Some(s) => format!("it was not loaded: {}", s.reason),
                    None => "there is no such playbook".to_owned(),
                };
                format!("incident asks for playbook {name:?} but {why}")
            });
        }
        let topical = matches!(topic, Topic::EventEmergency | Topic::EventEarlyWarning)
            .then(|| topic.as_str());
        topical
            .into_iter()
            .chain([draft.trigger.as_str(), draft.failure_mode.as_str()])
            .find_map(|k| self.for_trigger(k))
            .ok_or_else(|| {
                format!(
                    "no playbook answers trigger {:?} or failure mode {:?}",
                    draft.trigger, draft.failure_mode
                )
            })
    }

    /// Adds a playbook from `file`; a trigger already claimed (in `claimed`) by another
    /// playbook of the same origin is an error.
    fn insert(
        &mut self,
        p: Playbook,
        file: &str,
        claimed: &mut HashMap<String, String>,
    ) -> Result<(), String> {
        for t in &p.triggers {
            if let Some(other) = claimed.get(t).filter(|o| **o != p.name) {
                return Err(format!(
                    "trigger {t:?} is answered by both {:?} and {other:?}; keep it in one playbook",
                    p.name
                ));
            }
        }
        if let Some(old) = self.playbooks.get(&p.name) {
            // An override drops the triggers of the playbook it replaces.
            for t in &old.triggers {
                if self.by_trigger.get(t) == Some(&p.name) {
                    self.by_trigger.remove(t);
                }
            }
        }
        for t in &p.triggers {
            claimed.insert(t.clone(), p.name.clone());
            self.by_trigger.insert(t.clone(), p.name.clone());
        }
        self.files.insert(p.name.clone(), file.to_owned());
        self.skipped.retain(|s| s.name != p.name);
        self.playbooks.insert(p.name.clone(), Arc::new(p));
        Ok(())
    }
}

/// Loads the default playbooks, then those of `dir` (`*.yaml`, `*.yml`), checking
/// every action against the built-in actions.
pub fn load_playbooks(dir: Option<&Path>) -> Result<PlaybookSet, ConfigError> {
    load_playbooks_with(dir, &ActionRegistry::builtin())
}

/// The playbooks a configuration read from `config_file` asks for: the defaults, then
/// the directory of [`crate::playbook::PlaybooksConfig::resolve_dir`].
pub fn load_configured(
    cfg: &crate::playbook::PlaybooksConfig,
    config_file: Option<&Path>,
    actions: &ActionRegistry,
) -> Result<PlaybookSet, ConfigError> {
    load_playbooks_with(cfg.resolve_dir(config_file).as_deref(), actions)
}

/// [`load_playbooks`] with the actions of `actions` (built-ins plus your own).
pub fn load_playbooks_with(
    dir: Option<&Path>,
    actions: &ActionRegistry,
) -> Result<PlaybookSet, ConfigError> {
    let mut set = PlaybookSet::default();
    let mut errors = Vec::new();
    let mut claimed = Origin::default();
    for (file, text) in DEFAULT_PLAYBOOKS {
        let file = format!("<embedded>/{file}");
        add(&mut set, &file, text, actions, &mut claimed, &mut errors);
    }
    if let Some(dir) = dir {
        // Files of the directory may reuse the defaults' names and triggers (they
        // override them) but not each other's.
        let mut claimed = Origin::default();
        for path in yaml_files(dir)? {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{file}: cannot read playbook: {e}")))?;
            add(&mut set, &file, &text, actions, &mut claimed, &mut errors);
        }
    }
    if errors.is_empty() {
        for s in &set.skipped {
            tracing::warn!(playbook = %s.name, file = %s.file, reason = %s.reason, "playbook not loaded");
        }
        Ok(set)
    } else {
        Err(ConfigError(errors.join("\n")))
    }
}

/// What the files of one origin (the defaults, or the directory) already claimed:
/// trigger → playbook, and playbook name → file.
#[derive(Default)]
struct Origin {
    triggers: HashMap<String, String>,
    names: HashMap<String, String>,
}

/// Parses one file into the set.
fn add(
    set: &mut PlaybookSet,
    file: &str,
    text: &str,
    actions: &ActionRegistry,
    claimed: &mut Origin,
    errors: &mut Vec<String>,
) {
    let loc = Locator::new(text);
    match parse_playbook(file, text, actions) {
        Ok(Parsed::Loaded(p)) => {
            if let Some(first) = claimed.names.get(&p.name) {
                errors.push(format!(
                    "{file}:{}: playbook {:?} is also defined in {first}; rename one of them",
                    loc.top("name"),
                    p.name
                ));
                return;
            }
            claimed.names.insert(p.name.clone(), file.to_owned());
            if let Err(e) = set.insert(p, file, &mut claimed.triggers) {
                errors.push(format!("{file}:{}: {e}", loc.top("triggers")));
            }
        }
        Ok(Parsed::Skipped(s)) => {
            if let Some(old) = set.playbooks.remove(&s.name) {
                set.by_trigger.retain(|_, n| *n != old.name);
            }
            set.skipped.retain(|o| o.name != s.name);
            set.skipped.push(s);
        }
        Err(e) => errors.push(e.0),
    }
}

/// The playbook files of `dir`, sorted by name.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        ConfigError(format!(
            "playbooks directory {}: {e}; create it or fix `[playbooks] dir`",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}
