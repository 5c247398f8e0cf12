//! Checks of the `[[kernel]]` tables: names (valid, not reserved, unique), heartbeat
//! timing, isolation, and each kernel's kind and options against the registered kinds.
//! Every error names the file, line and column of the offending key.

use std::collections::HashMap;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::load::{line_col, Loaded};
use super::spans::{Doc, Seg};
use super::validate::{at, heartbeat_of, RESERVED_NAMES};
use super::ConfigError;
use crate::kernel::Isolation;
use crate::supervisor::{AutoShutdown, RestartType};

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn path(i: usize, key: &str) -> [Seg<'_>; 3] {
    [Seg::Key("kernel"), Seg::Index(i), Seg::Key(key)]
}

/// Checks the shape of every kernel table (not its kind: see [`check_kinds`]).
pub(crate) fn check_tables(l: &Loaded, doc: &Doc<'_>) -> Result<(), ConfigError> {
    let c = &l.config;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, k) in c.kernel.iter().enumerate() {
        let name_at = doc.span(&path(i, "name"));
        if !valid_name(&k.name) {
            return Err(at(
                l,
                name_at,
                format!(
                    "kernel name {:?} is not valid: use 1-64 lowercase letters, digits, '_' or '-'",
                    k.name
                ),
            ));
        }
        if RESERVED_NAMES.contains(&k.name.as_str()) {
            return Err(at(
                l,
                name_at,
                format!(
                    "kernel name {:?} is reserved for the tree's own parts; choose another",
                    k.name
                ),
            ));
        }
        if let Some(&first) = seen.get(k.name.as_str()) {
            let first_line = doc
                .span(&path(first, "name"))
                .map_or(1, |s| line_col(&l.text, s.start).0);
            return Err(at(
                l,
                name_at,
                format!(
                    "kernel name {:?} is used twice (first at line {first_line}); names must be unique, rename one",
                    k.name
                ),
            ));
        }
        seen.insert(&k.name, i);
        let (interval, timeout) = heartbeat_of(c, k);
        if timeout <= interval {
            return Err(at(
                l,
                doc.first(&[
                    &path(i, "heartbeat_timeout"),
                    &path(i, "heartbeat_interval"),
                    &path(i, "critical"),
                ]),
                format!(
                    "kernel {}: heartbeat_timeout ({timeout:?}) must be longer than heartbeat_interval ({interval:?})",
                    k.name
                ),
            ));
        }
        if k.significant {
            let why = if k.restart == RestartType::Permanent {
                Some("a permanent kernel cannot be significant; set restart = \"transient\" or \"temporary\"")
            } else if c.kernels.auto_shutdown == AutoShutdown::Never {
                Some("a significant kernel needs [kernels] auto_shutdown = \"any_significant\" or \"all_significant\"")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(at(
                    l,
                    doc.span(&path(i, "significant")),
                    format!("kernel {}: {why}", k.name),
                ));
            }
        }
        if k.start_timeout.is_some_and(|d| d.is_zero()) {
            return Err(at(
                l,
                doc.span(&path(i, "start_timeout")),
                format!(
                    "kernel {}: start_timeout must be above zero (e.g. \"15s\")",
                    k.name
                ),
            ));
        }
        let exec = k.kind == "exec";
        let iso_at = doc.span(&path(i, "isolation"));
        match k.isolation {
            Some(Isolation::Process) if !exec => {
                return Err(at(
                    l,
                    iso_at,
                    format!(
                        "kernel {}: isolation \"process\" is only for kind \"exec\"; use \"task\" or \"thread\"",
                        k.name
                    ),
                ))
            }
            Some(Isolation::Task | Isolation::Thread) if exec => {
                return Err(at(
                    l,
                    iso_at,
                    format!(
                        "kernel {}: kind \"exec\" always runs as a process; remove `isolation`",
                        k.name
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks every kernel's kind and options against the kinds registered now: an
/// unknown kind at its `kind` key, with the known ones; a bad option at the option; a
/// missing required option at the kernel's table. `grace check` and `grace serve` run
/// this before anything starts.
pub fn check_kinds(l: &Loaded) -> Result<(), ConfigError> {
    let doc = Doc::parse(&l.text);
    let kinds = crate::kernel::kind_names();
    for (i, k) in l.config.kernel.iter().enumerate() {
        if !kinds.contains(&k.kind) {
            return Err(at(
                l,
                doc.span(&path(i, "kind")),
                format!(
                    "kernel {}: unknown kind {:?}; use one of {} (a library registers its own with grace::kernel::register_kind)",
                    k.name,
                    k.kind,
                    kinds.join(", ")
                ),
            ));
        }
        let kernel_span = doc
            .span(&[Seg::Key("kernel"), Seg::Index(i)])
            .unwrap_or(0..0);
        let options = doc
            .value(&path(i, "options"))
            .cloned()
            .unwrap_or_else(|| Spanned::new(kernel_span.clone(), DeValue::Table(DeTable::new())));
        crate::kernel::check_options(&k.kind, &k.name, options, &k.options).map_err(|e| {
            at(
                l,
                Some(e.span),
                format!(
                    "kernel {} (kind {}): {}; {}",
                    k.name, k.kind, e.reason, e.fix
                ),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load::{parse, ConfigSource};
    use super::*;

    fn bad(text: &str) -> String {
        parse(text, ConfigSource::File("g.toml".into()))
            .expect_err("must be rejected")
            .0
    }

    fn bad_kind(text: &str) -> String {
        let l = parse(text, ConfigSource::File("g.toml".into())).expect("parses");
        check_kinds(&l).expect_err("must be rejected").0
    }

    #[test]
    fn a_duplicate_name_is_reported_at_the_duplicate() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\n\n[[kernel]]\nname = \"a\"\nkind = \"model\"\n");
        assert!(e.starts_with("g.toml:6:1: "), "{e}");
        assert!(e.contains("used twice (first at line 2)"), "{e}");
    }

    #[test]
    fn reserved_names_are_rejected() {
        let e = bad("[[kernel]]\nname = \"message_bus\"\nkind = \"model\"\n");
        assert!(e.starts_with("g.toml:2:1: "), "{e}");
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn timeouts_shorter_than_intervals_are_rejected() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\nheartbeat_interval = \"10s\"\nheartbeat_timeout = \"1s\"\n");
        assert!(e.starts_with("g.toml:5:1: "), "{e}");
        assert!(e.contains("must be longer"), "{e}");
    }

    #[test]
    fn significance_needs_a_transient_or_temporary_kernel_and_auto_shutdown() {
        let e = bad("[kernels]\nauto_shutdown = \"any_significant\"\n[[kernel]]\nname = \"a\"\nkind = \"model\"\nsignificant = true\n");
        assert!(e.starts_with("g.toml:6:1: "), "{e}");
        assert!(e.contains("permanent kernel cannot be significant"), "{e}");
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\nrestart = \"transient\"\nsignificant = true\n");
        assert!(e.contains("auto_shutdown"), "{e}");
    }

    #[test]
    fn process_isolation_needs_exec() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\nisolation = \"process\"\n");
        assert!(e.starts_with("g.toml:4:1: "), "{e}");
        assert!(e.contains("only for kind \"exec\""), "{e}");
    }

    #[test]
    fn an_unknown_kind_is_reported_at_its_key_with_the_known_kinds() {
        let e = bad_kind("[[kernel]]\nname = \"a\"\n  kind = \"nope\"\n");
        assert!(e.starts_with("g.toml:3:3: "), "{e}");
        assert!(e.contains("exec, kv_store, model, worker_pool"), "{e}");
    }

    #[test]
    fn an_exec_kernel_without_command_is_reported_at_its_table() {
        let e = bad_kind("[heartbeat]\n\n[[kernel]]\nname = \"web\"\nkind = \"exec\"\n");
        assert!(e.starts_with("g.toml:3:"), "{e}");
        assert!(e.contains("option command is required"), "{e}");
        assert!(e.contains("command = \"prog\""), "{e}");
    }

    #[test]
    fn bad_options_are_reported_at_the_option() {
        let e = bad_kind("[[kernel]]\nname = \"w\"\nkind = \"worker_pool\"\noptions = { rate = 1.0, workers = -5 }\n");
        assert!(e.starts_with("g.toml:4:25: "), "{e}");
        assert!(e.contains("option workers"), "{e}");
        let e = bad_kind("[[kernel]]\nname = \"w\"\nkind = \"worker_pool\"\n[kernel.options]\nrate = 1.0\nworkers = 0\n");
        assert!(e.starts_with("g.toml:6:1: "), "{e}");
        assert!(e.contains("option workers must be at least 1"), "{e}");
        let e = bad_kind("[[kernel]]\nname = \"e\"\nkind = \"exec\"\noptions = { command = \"x\", comand = \"y\" }\n");
        assert!(e.starts_with("g.toml:4:28: "), "{e}");
        assert!(e.contains("comand"), "{e}");
        let e = bad_kind("[[kernel]]\nname = \"e\"\nkind = \"exec\"\noptions = { command = \"x\", probe = { http = 80 } }\n");
        assert!(e.starts_with("g.toml:4:"), "{e}");
        assert!(e.contains("option probe.http"), "{e}");
        let e = bad_kind("[[kernel]]\nname = \"e\"\nkind = \"exec\"\noptions = { command = \"x\", probe = { tcp = \"nohost\" } }\n");
        assert!(e.starts_with("g.toml:4:38: "), "{e}");
        let e = bad_kind(
            "[[kernel]]\nname = \"m\"\nkind = \"model\"\n\n[kernel.options]\ninputs = 0\n",
        );
        assert!(e.starts_with("g.toml:6:1: "), "{e}");
    }

    #[test]
    fn the_embedded_default_passes() {
        let l = parse(super::super::DEFAULT_TOML, ConfigSource::Embedded).expect("parses");
        check_kinds(&l).expect("default kinds are valid");
    }
}
