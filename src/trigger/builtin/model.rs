//! `model_integrity`: model weight files whose SHA-256 does not match their manifest
//! (a JSON manifest listing files, or beside each file `<file>.sha256` or
//! `<file>.manifest.json` with a `sha256` field, as the demo `model` kernel writes) →
//! `restore_model_weights`. Relative patterns and manifest paths are taken from the
//! state directory, where the demo kernel keeps its weights.
//!
//! The weights, their sidecars and the manifest are watched for events (`notify`): a
//! write is checked at once, and the periodic check stays as the fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::checksum::{expand, HashCache};
use crate::trigger::config::ModelIntegrityConfig;
use crate::trigger::watch::absolute;
use crate::trigger::{Alert, Finding, Level, Trigger, TriggerError};

/// The checksum in a `.sha256` file: its first word, if it is 64 hex digits
/// (`sha256sum` output or a bare digest).
pub fn parse_sidecar(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?.to_ascii_lowercase();
    (word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())).then_some(word)
}

fn beside(f: &Path, suffix: &str) -> PathBuf {
    let mut s = f.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The expected checksum of `f` from a file beside it: `<f>.sha256`, else the `sha256`
/// field of `<f>.manifest.json`.
fn sidecar(f: &Path) -> Option<(String, PathBuf)> {
    let plain = beside(f, ".sha256");
    if let Some(d) = std::fs::read_to_string(&plain)
        .ok()
        .as_deref()
        .and_then(parse_sidecar)
    {
        return Some((d, plain));
    }
    let json = beside(f, ".manifest.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()?;
    let d = parse_sidecar(v.get("sha256")?.as_str()?)?;
    Some((d, json))
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Reads a JSON manifest: `{"<path>": "<sha256>"}`, or the same under `"files"`; paths
/// relative to the manifest's directory.
pub fn read_manifest(path: &Path) -> Result<BTreeMap<PathBuf, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let map = v.get("files").unwrap_or(&v);
    let obj = map
        .as_object()
        .ok_or("expected an object of path to sha256")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(obj
        .iter()
        .filter_map(|(k, d)| Some((canonical(&dir.join(k)), d.as_str()?.to_ascii_lowercase())))
        .collect())
}

/// One file that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The file.
    pub path: PathBuf,
    /// Where the expected checksum came from.
    pub manifest: String,
    /// The expected checksum.
    pub expected: String,
    /// The actual one (None: missing or unreadable).
    pub actual: Option<String>,
}

/// Verifies the watched files; returns the mismatches and how many files were checked.
pub(crate) fn verify(cfg: &ModelIntegrityConfig, cache: &mut HashCache) -> (Vec<Mismatch>, usize) {
    let mut expected: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
    if let Some(m) = &cfg.manifest {
        match read_manifest(m) {
            Ok(entries) => {
                for (p, d) in entries {
                    expected.insert(p, (d, m.display().to_string()));
                }
            }
            Err(e) => {
                tracing::warn!(manifest = %m.display(), error = %e, "model_integrity: cannot read manifest")
            }
        }
    }
    let files = expand(&cfg.paths).unwrap_or_default();
    cache.retain(&files);
    for f in &files {
        let c = canonical(f);
        if expected.contains_key(&c) {
            continue;
        }
        if let Some((d, from)) = sidecar(f) {
            expected.insert(c, (d, from.display().to_string()));
        }
    }
    let checked = expected.len();
    let mismatches = expected
        .into_iter()
        .filter_map(|(path, (want, manifest))| {
            let actual = cache.digest(&path).ok();
            (actual.as_deref() != Some(want.as_str())).then_some(Mismatch {
                path,
                manifest,
                expected: want,
                actual,
            })
        })
        .collect();
    (mismatches, checked)
}

/// `model_integrity`: verifies the weight files against their manifests.
pub struct ModelIntegrity {
    cfg: ModelIntegrityConfig,
    cache: Option<HashCache>,
    checked: usize,
}

impl ModelIntegrity {
    /// The trigger with its settings.
    pub fn new(cfg: ModelIntegrityConfig) -> ModelIntegrity {
        ModelIntegrity {
            cfg,
            cache: Some(HashCache::default()),
            checked: 0,
        }
    }
}

#[async_trait]
impl Trigger for ModelIntegrity {
    fn watch_patterns(&self, ctx: &KernelContext) -> Vec<String> {
        let root = ctx.system.paths.root();
        let mut p = absolute(&self.cfg.paths, root);
        let sidecars: Vec<String> = p
            .iter()
            .flat_map(|w| [format!("{w}.sha256"), format!("{w}.manifest.json")])
            .collect();
        p.extend(sidecars);
        if let Some(m) = &self.cfg.manifest {
            let m = root.join(m).display().to_string();
            p.push(glob::Pattern::escape(&m));
        }
        p
    }

    async fn check(&mut self, ctx: &KernelContext) -> Result<Vec<Finding>, TriggerError> {
        let mut cache = self.cache.take().unwrap_or_default();
        let root = ctx.system.paths.root();
        let mut cfg = self.cfg.clone();
        cfg.paths = cfg
            .paths
            .iter()
            .map(|p| match Path::new(p).is_absolute() {
                true => p.clone(),
                // The directory is literal text, not a pattern.
                false => format!("{}/{p}", glob::Pattern::escape(&root.display().to_string())),
            })
            .collect();
        cfg.manifest = cfg.manifest.map(|m| root.join(m));
        let (cache, (mismatches, checked)) = tokio::task::spawn_blocking(move || {
            let r = verify(&cfg, &mut cache);
            (cache, r)
        })
        .await
        .map_err(|e| TriggerError::check("model_integrity", format!("hashing task: {e}")))?;
        self.cache = Some(cache);
        self.checked = checked;
        let playbook = self.cfg.playbook_or("restore_model_weights");
        Ok(mismatches
            .into_iter()
            .map(|m| {
                let shown = m.path.display().to_string();
                let what = if m.actual.is_some() {
                    "does not match its checksum"
                } else {
                    "is missing or unreadable"
                };
                Finding::Holds(
                    Alert::new(
                        Level::Incident,
                        "model_integrity",
                        &shown,
                        "checksum_mismatch",
                        Severity::High,
                        Some(playbook),
                        format!("model weights {shown} {what} ({})", m.manifest),
                    )
                    .details(json!({
                        "path": shown,
                        "manifest": m.manifest,
                        "expected_sha256": m.expected,
                        "actual_sha256": m.actual,
                    })),
                )
            })
            .collect())
    }

    fn stats(&self) -> Value {
        json!({ "files_checked": self.checked })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_in_sha256sum_format_or_bare() {
        let d = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            parse_sidecar(&format!("{d}  weights.pt\n")),
            Some(d.to_owned())
        );
        assert_eq!(parse_sidecar(&d.to_uppercase()), Some(d.to_owned()));
        assert_eq!(parse_sidecar("abc"), None);
        assert_eq!(parse_sidecar(""), None);
    }

    #[test]
    fn a_manifest_json_beside_the_file_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = dir.path().join("m.pt");
        std::fs::write(&w, b"abc").expect("write");
        std::fs::write(
            dir.path().join("m.pt.manifest.json"),
            r#"{"file": "m.pt", "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "bytes": 3}"#,
        )
        .expect("write");
        let cfg = ModelIntegrityConfig {
            paths: vec![format!("{}/*.pt", dir.path().display())],
            ..Default::default()
        };
        let (bad, checked) = verify(&cfg, &mut HashCache::default());
        assert_eq!((bad.len(), checked), (0, 1));
        std::fs::write(&w, b"abd").expect("write");
        let (bad, _) = verify(&cfg, &mut HashCache::default());
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn a_json_manifest_lists_missing_files_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = dir.path().join("w.pt");
        std::fs::write(&w, b"abc").expect("write");
        let m = dir.path().join("manifest.json");
        std::fs::write(
            &m,
            r#"{"files": {"w.pt": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "gone.pt": "00"}}"#,
        )
        .expect("write");
        let cfg = ModelIntegrityConfig {
            paths: vec![format!("{}/*.pt", dir.path().display())],
            manifest: Some(m),
            ..Default::default()
        };
        let (bad, checked) = verify(&cfg, &mut HashCache::default());
        assert_eq!(checked, 2);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].path.ends_with("gone.pt") && bad[0].actual.is_none());
    }
}
