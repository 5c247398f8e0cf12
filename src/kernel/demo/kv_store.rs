//! The `kv_store` demo kernel: an in-memory map that snapshots itself atomically to a
//! file under the state directory and reloads it on start, so a restart loses at most the
//! writes of the last snapshot interval (none after a graceful stop).
//!
//! The snapshot is `{"version": 1, "sha256": ..., "entries": {...}}`, where `sha256` is
//! over the JSON of `entries`; a snapshot that fails the check stops the kernel from
//! starting with a reason that says to restore or remove it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::kernel::{Health, Kernel, KernelContext, KernelError, Request};

/// Options of a `kv_store` kernel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvStoreOptions {
    /// How often a changed map is written (checked at each heartbeat tick).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// The snapshot file, relative to the state directory (default `kv/<name>.json`).
    pub file: Option<PathBuf>,
    /// Keys the map holds at most.
    pub max_entries: usize,
}

impl Default for KvStoreOptions {
    fn default() -> Self {
        KvStoreOptions {
            snapshot_interval: Duration::from_secs(10),
            file: None,
            max_entries: 100_000,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u32,
    sha256: String,
    entries: BTreeMap<String, Value>,
}

fn checksum(entries: &BTreeMap<String, Value>) -> Result<String, serde_json::Error> {
    Ok(hex::encode(Sha256::digest(serde_json::to_vec(entries)?)))
}

/// Reads and verifies a snapshot (pure; used at start and in tests).
fn decode(bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    let snap: SnapshotFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let sum = checksum(&snap.entries).map_err(|e| e.to_string())?;
    if sum != snap.sha256 {
        return Err(format!(
            "checksum {sum} does not match the recorded {}",
            snap.sha256
        ));
    }
    Ok(snap.entries)
}

/// The `kv_store` kernel.
pub struct KvStoreKernel {
    opts: KvStoreOptions,
    path: PathBuf,
    map: BTreeMap<String, Value>,
    /// Values of recent reads; `clear_caches` drops it.
    cache: HashMap<String, Value>,
    dirty: bool,
    last_snapshot: Instant,
    snapshots: u64,
    snapshot_errors: u64,
    last_error: Option<String>,
}

impl KvStoreKernel {
    /// A store with these options (loaded by [`Kernel::start`]).
    pub fn new(opts: KvStoreOptions) -> KvStoreKernel {
        KvStoreKernel {
            opts,
            path: PathBuf::new(),
            map: BTreeMap::new(),
            cache: HashMap::new(),
            dirty: false,
            last_snapshot: Instant::now(),
            snapshots: 0,
            snapshot_errors: 0,
            last_error: None,
        }
    }

    /// Writes the map atomically (temporary file, fsync, rename) off the async threads.
    async fn snapshot(&mut self) -> Result<(), KernelError> {
        let io = |e: std::io::Error, path: &PathBuf| KernelError::Io {
            context: format!("writing kv snapshot {}", path.display()),
            source: e,
        };
        let snap = SnapshotFile {
            version: 1,
            sha256: checksum(&self.map).map_err(|e| KernelError::failed(e.to_string()))?,
            entries: self.map.clone(),
        };
        let bytes = serde_json::to_vec(&snap).map_err(|e| KernelError::failed(e.to_string()))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || crate::state::atomic_write(&path, &bytes))
            .await
            .map_err(|e| KernelError::failed(format!("snapshot task: {e}")))?
            .map_err(|e| io(e, &self.path))?;
        self.dirty = false;
        self.last_snapshot = Instant::now();
        self.snapshots += 1;
        Ok(())
    }

    fn key<'a>(req: &'a Request, ctx: &KernelContext) -> Result<&'a str, KernelError> {
        req.args
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!("{} needs {{\"key\": \"...\"}}", req.op),
            })
    }
}

#[async_trait]
impl Kernel for KvStoreKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        let rel = self.opts.file.clone();
        let rel = rel.unwrap_or_else(|| PathBuf::from(format!("kv/{}.json", ctx.name)));
        self.path = ctx.system.paths.root().join(rel);
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                self.map = decode(&bytes).map_err(|why| {
                    KernelError::failed(format!(
                        "kv snapshot {} is corrupt ({why}); restore it (restore_from_snapshot) \
                         or remove it to start empty",
                        self.path.display()
                    ))
                })?;
                tracing::info!(kernel = %ctx.name, entries = self.map.len(), "kv snapshot loaded");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KernelError::Io {
                    context: format!("reading kv snapshot {}", self.path.display()),
                    source,
                })
            }
        }
        self.last_snapshot = Instant::now();
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "get" => {
                let key = Self::key(&req, ctx)?;
                if let Some(value) = self.cache.get(key) {
                    return Ok(
                        json!({ "key": key, "value": value, "found": true, "cached": true }),
                    );
                }
                let Some(value) = self.map.get(key) else {
                    return Ok(json!({ "key": key, "value": null, "found": false }));
                };
                self.cache.insert(key.to_owned(), value.clone());
                Ok(json!({ "key": key, "value": value, "found": true, "cached": false }))
            }
            "put" => {
                let key = Self::key(&req, ctx)?.to_owned();
                let value = req.args.get("value").cloned().unwrap_or(Value::Null);
                if !self.map.contains_key(&key) && self.map.len() >= self.opts.max_entries {
                    return Err(KernelError::BadRequest {
                        kernel: ctx.name.to_string(),
                        reason: format!("the store is full ({} keys)", self.opts.max_entries),
                    });
                }
                self.cache.remove(&key);
                let previous = self.map.insert(key, value);
                self.dirty = true;
                Ok(json!({ "previous": previous }))
            }
            "delete" => {
                let key = Self::key(&req, ctx)?.to_owned();
                self.cache.remove(&key);
                let deleted = self.map.remove(&key).is_some();
                self.dirty |= deleted;
                Ok(json!({ "deleted": deleted }))
            }
            "keys" => Ok(json!(self.map.keys().take(1000).collect::<Vec<_>>())),
            "snapshot" => {
                self.snapshot().await?;
                Ok(json!({ "path": self.path, "entries": self.map.len() }))
            }
            "stats" => Ok(self.stats()),
            other => Err(KernelError::BadRequest {
                kernel: ctx.name.to_string(),
                reason: format!(
                    "unknown op {other:?}; kv_store takes get, put, delete, keys, snapshot, stats"
                ),
            }),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        if self.dirty && self.last_snapshot.elapsed() >= self.opts.snapshot_interval {
            // A failed write (disk full) is not cured by a restart: count it, report it
            // through health, and try again next time.
            match self.snapshot().await {
                Ok(()) => self.last_error = None,
                Err(e) => {
                    tracing::warn!(kernel = %ctx.name, error = %e, "kv snapshot failed");
                    self.snapshot_errors += 1;
                    self.last_error = Some(e.to_string());
                }
            }
        }
        Ok(())
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        match &self.last_error {
            Some(e) => Health::Degraded { reason: e.clone() },
            None => Health::Healthy,
        }
    }

    async fn clear_caches(&mut self, _ctx: &KernelContext) -> Result<Value, KernelError> {
        let entries = self.cache.len();
        let bytes: usize = self
            .cache
            .iter()
            .map(|(k, v)| k.len() + v.to_string().len())
            .sum();
        self.cache = HashMap::new();
        Ok(json!({ "freed_entries": entries, "freed_bytes": bytes }))
    }

    fn stats(&self) -> Value {
        json!({
            "entries": self.map.len(),
            "cache_entries": self.cache.len(),
            "dirty": self.dirty,
            "snapshots": self.snapshots,
            "snapshot_errors": self.snapshot_errors,
            "file": self.path,
        })
    }

    async fn stop(&mut self, ctx: &KernelContext) {
        if self.dirty {
            if let Err(e) = self.snapshot().await {
                tracing::warn!(kernel = %ctx.name, error = %e, "kv snapshot at stop failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_a_changed_one_is_refused() {
        let mut m = BTreeMap::new();
        m.insert("a".to_owned(), json!({"x": [1, 2.5, "s"]}));
        let snap = SnapshotFile {
            version: 1,
            sha256: checksum(&m).expect("sum"),
            entries: m.clone(),
        };
        let bytes = serde_json::to_vec(&snap).expect("json");
        assert_eq!(decode(&bytes).expect("valid"), m);
        let tampered = String::from_utf8(bytes)
            .expect("utf8")
            .replace("2.5", "3.5");
        assert!(decode(tampered.as_bytes())
            .expect_err("tampered")
            .contains("checksum"));
        assert!(decode(b"{\"trunc").is_err());
    }
}
