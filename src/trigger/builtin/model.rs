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

use super::drift::unreadable_alert;
use crate::incident::Severity;
use crate::kernel::KernelContext;
use crate::trigger::checksum::{classify_read_error, expand, HashCache, ReadFailure};
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
    /// The actual one (None: missing).
    pub actual: Option<String>,
}

/// What one verification found.
#[derive(Debug, Default)]
pub(crate) struct Verification {
    /// Files whose checksum differs, or that are missing.
    pub mismatches: Vec<Mismatch>,
    /// Files that could not be read (not "not found"): path, manifest, error.
    pub unreadable: Vec<(PathBuf, String, String)>,
    /// Files checked.
    pub checked: usize,
}

/// Verifies the watched files against their expected checksums.
pub(crate) fn verify(cfg: &ModelIntegrityConfig, cache: &mut HashCache) -> Verification {
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
    let mut out = Verification {
        checked: expected.len(),
        ..Verification::default()
    };
    for (path, (want, manifest)) in expected {
        let actual = match cache.digest(&path) {
            Ok(d) if d == want => continue,
            Ok(d) => Some(d),
            Err(e) => match classify_read_error(&e) {
                ReadFailure::Missing => None,
                ReadFailure::Unreadable(text) => {
                    out.unreadable.push((path, manifest, text));
                    continue;
                }
            },
        };
        out.mismatches.push(Mismatch {
            path,
            manifest,
            expected: want,
            actual,
        });
    }
    out
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
        let (cache, found) = tokio::task::spawn_blocking(move || {
            let r = verify(&cfg, &mut cache);
            (cache, r)
        })
        .await
        .map_err(|e| TriggerError::check("model_integrity", format!("hashing task: {e}")))?;
        self.cache = Some(cache);
        self.checked = found.checked;
        let playbook = self.cfg.playbook_or("restore_model_weights");
        let unreadable = found.unreadable.into_iter().map(|(path, manifest, error)| {
            Finding::Holds(unreadable_alert(
                "model_integrity",
                &path,
                &error,
                Some(json!({ "manifest": manifest })),
            ))
        });
        Ok(found
            .mismatches
            .into_iter()
            .map(|m| {
                let shown = m.path.display().to_string();
                let what = if m.actual.is_some() {
                    "does not match its checksum"
                } else {
                    "is missing"
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
            .chain(unreadable)
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
        let v = verify(&cfg, &mut HashCache::default());
        assert_eq!((v.mismatches.len(), v.checked), (0, 1));
        std::fs::write(&w, b"abd").expect("write");
        let v = verify(&cfg, &mut HashCache::default());
        assert_eq!(v.mismatches.len(), 1);
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
        let v = verify(&cfg, &mut HashCache::default());
        assert_eq!(v.checked, 2);
        assert_eq!(v.mismatches.len(), 1);
        let bad = &v.mismatches;
        assert!(bad[0].path.ends_with("gone.pt") && bad[0].actual.is_none());
    }

    #[test]
    fn weights_that_cannot_be_read_are_unreadable_not_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the manifest lists a weights file: reading it fails with
        // EISDIR, an error that is not "not found".
        std::fs::create_dir(dir.path().join("w.pt")).expect("mkdir");
        let m = dir.path().join("manifest.json");
        std::fs::write(
            &m,
            r#"{"w.pt": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#,
        )
        .expect("write");
        let cfg = ModelIntegrityConfig {
            paths: Vec::new(),
            manifest: Some(m),
            ..Default::default()
        };
        let v = verify(&cfg, &mut HashCache::default());
        assert!(v.mismatches.is_empty(), "{:?}", v.mismatches);
        assert_eq!(v.unreadable.len(), 1);
        let (path, _, error) = &v.unreadable[0];
        assert!(path.ends_with("w.pt"));
        assert!(error.contains("directory"), "{error}");
    }
}
