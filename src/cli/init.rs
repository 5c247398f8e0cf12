//! `grace init [DIR]` and `grace check`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::config::{self, DEFAULT_TOML};

/// Files `grace init` writes: (relative path, content).
pub fn starter_files() -> Vec<(String, String)> {
    let mut files = vec![("grace.toml".to_owned(), DEFAULT_TOML.to_owned())];
    for (name, text) in crate::playbook::DEFAULT_PLAYBOOKS {
        files.push((format!("playbooks/{name}"), text.to_owned()));
    }
    files
}

/// Writes the starter files into `dir`: those missing, or all of them with `force`.
/// Says what it wrote and what it kept, so it can be run where some already are (a
/// checkout with its own `playbooks/`).
pub fn init(dir: &Path, force: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let files = starter_files();
    let total = files.len();
    let mut kept = 0;
    for (rel, content) in files {
        let path = dir.join(&rel);
        if !force && path.exists() {
            writeln!(
                out,
                "kept  {} (exists; --force overwrites it)",
                path.display()
            )?;
            kept += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::state::atomic_write(&path, content.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "wrote {}", path.display())?;
    }
    if kept == total {
        writeln!(out, "nothing to write: every starter file is there")?;
    }
    writeln!(
        out,
        "next: edit {}, then `grace check` and `grace serve`",
        dir.join("grace.toml").display()
    )?;
    Ok(())
}

/// Validates the configuration and everything it refers to (kernel kinds and options,
/// triggers, playbooks), exactly as `grace serve` does before it starts; prints a
/// summary.
pub fn check(config_path: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = config::load(config_path)?;
    let set = config::preflight(&loaded)?;
    writeln!(
        out,
        "ok: {}: {} kernels",
        loaded.source.display(),
        loaded.config.kernel.len()
    )?;
    writeln!(
        out,
        "ok: {}: {} playbooks",
        loaded.config.playbooks.dir.as_deref().map_or_else(
            || "<embedded playbooks>".to_owned(),
            |d| d.display().to_string()
        ),
        set.len()
    )?;
    for s in set.skipped() {
        writeln!(
            out,
            "skipped: playbook {} ({}): {}",
            s.name, s.file, s.reason
        )?;
    }
    Ok(())
}
