//! Kernel kinds: the registry from a `kind` name in `grace.toml` to the builder that
//! turns a kernel's `options` table into a factory. Built in: `exec`, `worker_pool`,
//! `kv_store`, `model`; library users add theirs with [`register_kind`].

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use toml::de::DeValue;
use toml::Spanned;

use super::demo::{
    KvStoreKernel, KvStoreOptions, ModelKernel, ModelOptions, WorkerPoolKernel, WorkerPoolOptions,
};
use super::exec::{ExecKernel, ExecOptions, EXEC_FIX};
use super::option_check::check_spanned;
pub use super::option_check::OptionError;
use super::{Isolation, KernelError, KernelFactory};
use crate::config::{ConfigError, KernelConfig};

/// What a builder makes of a kernel's options: its factory, and the isolation the kind
/// requires (`None`: the configuration chooses).
pub type Built = (KernelFactory, Option<Isolation>);

/// Builds a kind's factory from the kernel's name and `options` table.
pub type KindBuilder = Arc<dyn Fn(&str, &toml::Table) -> Result<Built, KernelError> + Send + Sync>;

/// Checks a built-in kind's options straight from the configuration document, so that
/// an error carries the span of the offending option.
type Check = fn(Spanned<DeValue<'_>>) -> Result<(), OptionError>;

/// A registered kind: its builder, and for a built-in kind its spanned check.
#[derive(Clone)]
struct Kind {
    builder: KindBuilder,
    check: Option<Check>,
}

fn builtin(builder: KindBuilder, check: Check) -> Kind {
    Kind {
        builder,
        check: Some(check),
    }
}

static KINDS: LazyLock<RwLock<BTreeMap<String, Kind>>> = LazyLock::new(|| {
    let mut m: BTreeMap<String, Kind> = BTreeMap::new();
    m.insert("exec".into(), builtin(Arc::new(build_exec), check_exec));
    m.insert(
        "worker_pool".into(),
        builtin(Arc::new(build_worker_pool), check_worker_pool),
    );
    m.insert(
        "kv_store".into(),
        builtin(Arc::new(build_kv_store), check_kv_store),
    );
    m.insert("model".into(), builtin(Arc::new(build_model), check_model));
    RwLock::new(m)
});

/// Registers (or replaces) the kind `name`; returns whether one was replaced.
pub fn register_kind(
    name: &str,
    builder: impl Fn(&str, &toml::Table) -> Result<Built, KernelError> + Send + Sync + 'static,
) -> bool {
    let kind = Kind {
        builder: Arc::new(builder),
        check: None,
    };
    KINDS.write().insert(name.to_owned(), kind).is_some()
}

/// The registered kind names, sorted.
pub fn kind_names() -> Vec<String> {
    KINDS.read().keys().cloned().collect()
}

/// Builds kernel `name` of kind `kind` from its options.
pub fn build_kind(kind: &str, name: &str, options: &toml::Table) -> Result<Built, KernelError> {
    let builder = KINDS.read().get(kind).map(|k| k.builder.clone());
    let builder = builder.ok_or_else(|| KernelError::BadOptions {
        kernel: name.to_owned(),
        kind: kind.to_owned(),
        reason: format!("unknown kind {kind:?}"),
        fix: format!(
            "use one of {} (or register the kind with grace::kernel::register_kind)",
            kind_names().join(", ")
        ),
    })?;
    builder(name, options)
}

/// Deserialises a kind's options, turning serde's message into one that names the
/// kernel, its kind, the option and the fix.
pub fn parse_options<T: DeserializeOwned>(
    kernel: &str,
    kind: &str,
    options: &toml::Table,
    fix: &str,
) -> Result<T, KernelError> {
    // Through text, so that the error has a span that tells which option is wrong.
    let text = toml::to_string(options).unwrap_or_default();
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let option = e.span().and_then(|s| option_at(&text, s.start));
        let reason = match option {
            Some(o) if !e.message().contains(&format!("`{o}`")) => {
                format!("option {o}: {}", e.message())
            }
            _ => format!("in options: {}", e.message()),
        };
        bad(kernel, kind, reason, fix)
    })
}

/// The dotted name of the option whose line holds byte `at` of rendered TOML `text`.
fn option_at(text: &str, at: usize) -> Option<String> {
    let mut section = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            section = Some(t.trim_matches(|c| c == '[' || c == ']').to_owned());
        }
        if at < start + line.len() {
            let key = t.split('=').next()?.trim().trim_matches('"');
            if key.is_empty() || t.starts_with('[') {
                return section;
            }
            return Some(match section {
                Some(s) => format!("{s}.{key}"),
                None => key.to_owned(),
            });
        }
        start += line.len();
    }
    section
}

fn bad(kernel: &str, kind: &str, reason: String, fix: &str) -> KernelError {
    KernelError::BadOptions {
        kernel: kernel.to_owned(),
        kind: kind.to_owned(),
        reason,
        fix: fix.to_owned(),
    }
}

/// Resolves a `[[kernel]]`'s kind and options through the registered kinds: the
/// [`crate::tree::build::KindResolver`] that `grace serve` and `grace check` use.
pub fn resolve_kind(k: &KernelConfig) -> Result<Built, ConfigError> {
    build_kind(&k.kind, &k.name, &k.options).map_err(|e| ConfigError(e.to_string()))
}

/// Checks kernel `name`'s options against its kind `kind`, which must be registered.
/// `options` is the kernel's `options` value from the configuration document, with its
/// spans (an empty table spanning the kernel when it has none); `table` is the same
/// options as parsed. A built-in kind deserialises them strictly (unknown options, wrong
/// types and out-of-range values are refused, with the span of the option); a kind a
/// library user registered is built once, and its error spans the whole table.
pub fn check_options(
    kind: &str,
    name: &str,
    options: Spanned<DeValue<'_>>,
    table: &toml::Table,
) -> Result<(), OptionError> {
    let whole = options.span();
    let Some(k) = KINDS.read().get(kind).cloned() else {
        return Err(OptionError {
            span: whole,
            reason: format!("unknown kind {kind:?}"),
            fix: format!("use one of {}", kind_names().join(", ")),
        });
    };
    if let Some(check) = k.check {
        return check(options);
    }
    match (k.builder)(name, table) {
        Ok(_) => Ok(()),
        Err(KernelError::BadOptions { reason, fix, .. }) => Err(OptionError {
            span: whole,
            reason,
            fix,
        }),
        Err(e) => Err(OptionError {
            span: whole,
            reason: e.to_string(),
            fix: format!("see the documentation of kind {kind:?}"),
        }),
    }
}

fn check_exec(o: Spanned<DeValue<'_>>) -> Result<(), OptionError> {
    check_spanned(o, EXEC_FIX, ExecOptions::validate)
}

fn check_worker_pool(o: Spanned<DeValue<'_>>) -> Result<(), OptionError> {
    check_spanned(o, WORKER_POOL_FIX, WorkerPoolOptions::validate)
}

fn check_kv_store(o: Spanned<DeValue<'_>>) -> Result<(), OptionError> {
    check_spanned(o, KV_STORE_FIX, kv_store_validate)
}

fn check_model(o: Spanned<DeValue<'_>>) -> Result<(), OptionError> {
    check_spanned(o, MODEL_FIX, ModelOptions::validate)
}

fn build_exec(name: &str, t: &toml::Table) -> Result<Built, KernelError> {
    let o: ExecOptions = parse_options(name, "exec", t, EXEC_FIX)?;
    o.validate().map_err(|r| bad(name, "exec", r, EXEC_FIX))?;
    Ok((ExecKernel::factory(o), Some(Isolation::Process)))
}

const WORKER_POOL_FIX: &str = "worker_pool options are workers, max_workers, rate (jobs per \
second), job_bytes, low_priority (0 to 1), max_backlog";

fn build_worker_pool(name: &str, t: &toml::Table) -> Result<Built, KernelError> {
    let o: WorkerPoolOptions = parse_options(name, "worker_pool", t, WORKER_POOL_FIX)?;
    o.validate()
        .map_err(|r| bad(name, "worker_pool", r, WORKER_POOL_FIX))?;
    Ok((
        Arc::new(move || Box::new(WorkerPoolKernel::new(o.clone()))),
        None,
    ))
}

const KV_STORE_FIX: &str = "kv_store options are snapshot_interval (\"10s\"), file (relative \
to the state directory), max_entries";

fn build_kv_store(name: &str, t: &toml::Table) -> Result<Built, KernelError> {
    let o: KvStoreOptions = parse_options(name, "kv_store", t, KV_STORE_FIX)?;
    kv_store_validate(&o).map_err(|r| bad(name, "kv_store", r, KV_STORE_FIX))?;
    Ok((
        Arc::new(move || Box::new(KvStoreKernel::new(o.clone()))),
        None,
    ))
}

fn kv_store_validate(o: &KvStoreOptions) -> Result<(), String> {
    if o.max_entries == 0 {
        return Err(
            "option max_entries must be at least 1 (a store of 0 keys refuses every put)".into(),
        );
    }
    Ok(())
}

const MODEL_FIX: &str = "model options are weights (relative to the state directory), inputs \
and outputs (1 to 4096)";

fn build_model(name: &str, t: &toml::Table) -> Result<Built, KernelError> {
    let o: ModelOptions = parse_options(name, "model", t, MODEL_FIX)?;
    o.validate().map_err(|r| bad(name, "model", r, MODEL_FIX))?;
    Ok((
        Arc::new(move || Box::new(ModelKernel::new(o.clone()))),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Built, KernelError>) -> KernelError {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn builtins_build_and_exec_requires_process_isolation() {
        let (_, iso) = build_kind("exec", "e", &table("command = \"true\"")).expect("exec");
        assert_eq!(iso, Some(Isolation::Process));
        for k in ["worker_pool", "kv_store", "model"] {
            let (_, iso) = build_kind(k, "d", &toml::Table::new()).expect(k);
            assert_eq!(iso, None);
        }
    }

    #[test]
    fn an_unknown_option_names_kernel_kind_option_and_fix() {
        let e = err(build_kind("exec", "web", &table("comand = \"x\"")));
        let m = e.to_string();
        assert!(m.contains("kernel web (kind exec)"), "{m}");
        assert!(m.contains("comand"), "{m}");
        assert!(m.contains("command = \"prog\""), "{m}");
    }

    #[test]
    fn a_wrong_type_and_a_bad_range_are_explained() {
        let e = err(build_kind(
            "worker_pool",
            "wp",
            &table("workers = \"four\""),
        ));
        assert!(
            e.to_string()
                .contains("kernel wp (kind worker_pool): option workers"),
            "{e}"
        );
        let e = err(build_kind(
            "worker_pool",
            "wp",
            &table("low_priority = 3.0"),
        ));
        assert!(e.to_string().contains("option low_priority"), "{e}");
        let e = err(build_kind(
            "exec",
            "e",
            &table("command = \"x\"\nstop_timeout = 5"),
        ));
        assert!(e.to_string().contains("option stop_timeout"), "{e}");
        let t = table("command = \"x\"\nprobe = { http = 80 }");
        let e = err(build_kind("exec", "e", &t));
        assert!(e.to_string().contains("option probe.http"), "{e}");
    }

    #[test]
    fn an_unknown_kind_lists_the_known_ones() {
        let e = err(build_kind("nope", "k", &toml::Table::new()));
        assert!(e.to_string().contains("worker_pool"), "{e}");
    }

    #[test]
    fn registered_kinds_are_built() {
        register_kind("test_kind_registered", |name, _| {
            Err(KernelError::failed(format!("built {name}")))
        });
        assert!(kind_names().contains(&"test_kind_registered".to_owned()));
        let e = err(build_kind("test_kind_registered", "x", &toml::Table::new()));
        assert_eq!(e.to_string(), "built x");
    }

    #[test]
    fn a_registered_kind_is_checked_by_building_it() {
        register_kind("test_kind_checked", |name, t| {
            if t.contains_key("size") {
                build_kind("model", name, &toml::Table::new())
            } else {
                Err(bad(
                    name,
                    "test_kind_checked",
                    "option size is required".into(),
                    "set size",
                ))
            }
        });
        let text = "{ colour = 1 }";
        let v = DeValue::parse(text).expect("value");
        let e =
            check_options("test_kind_checked", "k", v, &table("colour = 1")).expect_err("refused");
        assert_eq!(e.span, 0..text.len(), "the whole table");
        assert_eq!(
            (e.reason.as_str(), e.fix.as_str()),
            ("option size is required", "set size")
        );
        let v = DeValue::parse("{ size = 1 }").expect("value");
        assert!(check_options("test_kind_checked", "k", v, &table("size = 1")).is_ok());
    }

    #[test]
    fn a_kernel_config_resolves_through_its_kind() {
        let k: KernelConfig =
            toml::from_str("name = \"web\"\nkind = \"exec\"\noptions = { command = \"true\" }")
                .expect("kernel");
        let (_, iso) = resolve_kind(&k).expect("resolves");
        assert_eq!(iso, Some(Isolation::Process));
        let k: KernelConfig = toml::from_str("name = \"web\"\nkind = \"exec\"").expect("kernel");
        match resolve_kind(&k) {
            Ok(_) => panic!("no command"),
            Err(e) => assert!(e.0.contains("missing field `command`"), "{}", e.0),
        }
    }
}
