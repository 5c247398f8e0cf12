//! Everything a configuration refers to, checked before anything runs: the kernels'
//! kinds and options, and the playbooks. `grace check` and `grace serve` both run it,
//! so a configuration that `grace check` accepts is one serve starts with.

use super::load::Loaded;
use super::spans::{Doc, Seg};
use super::validate::at;
use super::ConfigError;
use crate::playbook::{load_playbooks_with, ActionRegistry, PlaybookSet};

/// Checks `l` beyond its own text (kinds and options, playbooks) with the built-in
/// playbook actions; returns the playbooks serve would load.
pub fn preflight(l: &Loaded) -> Result<PlaybookSet, ConfigError> {
    preflight_with(l, &ActionRegistry::builtin())
}

/// [`preflight`] with the playbook actions of `actions`.
pub fn preflight_with(l: &Loaded, actions: &ActionRegistry) -> Result<PlaybookSet, ConfigError> {
    super::check_kinds(l)?;
    let dir = l.config.playbooks.dir.as_deref();
    if let Some(d) = dir.filter(|d| !d.is_dir()) {
        let doc = Doc::parse(&l.text);
        return Err(at(
            l,
            doc.span(&[Seg::Key("playbooks"), Seg::Key("dir")]),
            format!(
                "playbooks directory {} does not exist; create it or fix `[playbooks] dir` (relative to the configuration file)",
                d.display()
            ),
        ));
    }
    load_playbooks_with(dir, actions)
}
