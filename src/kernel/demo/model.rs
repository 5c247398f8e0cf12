//! The `model` demo kernel: loads a weights file, checks its SHA-256 against a manifest
//! at start and at every heartbeat tick, and answers `predict` with a small linear layer
//! and softmax. A mismatch fails the kernel, which is what the model-integrity trigger
//! and the `restore_model_weights` playbook act on.
//!
//! Files (paths relative to the state directory): the weights, default
//! `models/<name>.pt` (little-endian f32: an `outputs` x `inputs` matrix, then `outputs`
//! biases), created with deterministic content when absent; and the manifest beside it,
//! `<weights>.manifest.json`: `{"file", "sha256", "bytes", "inputs", "outputs"}`.
//!
//! A read error that passes (descriptors exhausted, an interrupted call) is not a
//! corrupt model: start retries it a few times over a few hundred milliseconds instead
//! of failing at once (which would use up the kernel's restart attempts in
//! milliseconds), and a tick that meets one keeps the loaded weights and reports the
//! kernel degraded until a check succeeds again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::kernel::{Health, Kernel, KernelContext, KernelError, Request};
use crate::state::atomic_write;

/// Options of a `model` kernel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelOptions {
    /// The weights file, relative to the state directory (default `models/<name>.pt`).
    pub weights: Option<PathBuf>,
    /// Input size of the layer.
    pub inputs: usize,
    /// Output size (classes).
    pub outputs: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            weights: None,
            inputs: 64,
            outputs: 16,
        }
    }
}

impl ModelOptions {
    /// Checks the ranges serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("inputs", self.inputs), ("outputs", self.outputs)] {
            if v == 0 || v > 4096 {
                return Err(format!("option {name} must be between 1 and 4096"));
            }
        }
        Ok(())
    }
}

/// The manifest recorded beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The weights file's name.
    pub file: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Input size.
    pub inputs: usize,
    /// Output size.
    pub outputs: usize,
}

/// The manifest path of a weights file.
pub fn manifest_path(weights: &Path) -> PathBuf {
    let mut s = weights.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Waits between the attempts of a start that meets a transient read error: five
/// retries, 310 ms in all.
pub const START_RETRY_WAITS: [Duration; 5] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
];

/// Whether a read error passes by itself: too many open files (EMFILE, ENFILE), try
/// again (EAGAIN), an interrupted call (EINTR).
pub fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::EINTR)
    ) || matches!(
        e.kind(),
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
    )
}

fn transient(e: &KernelError) -> bool {
    matches!(e, KernelError::Io { source, .. } if is_transient(source))
}

/// Runs `op` until it succeeds, fails with an error that is not a transient read
/// error, or `waits` are used up (waiting each in turn before the next attempt).
pub async fn retry_transient<T>(
    waits: &[Duration],
    mut op: impl FnMut() -> Result<T, KernelError>,
) -> Result<T, KernelError> {
    let mut waits = waits.iter();
    loop {
        let e = match op() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match waits.next() {
            Some(w) if transient(&e) => {
                tracing::warn!(error = %e, retry_in = ?w, "transient read error; retrying");
                tokio::time::sleep(*w).await;
            }
            _ => return Err(e),
        }
    }
}

/// Deterministic weights for `name`: a splitmix64 stream mapped to [-1, 1).
fn generate(name: &str, count: usize) -> Vec<u8> {
    let mut x = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut out = Vec::with_capacity(count * 4);
    for _ in 0..count {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let f = (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        out.extend_from_slice(&f.to_le_bytes());
    }
    out
}

/// The `model` kernel.
pub struct ModelKernel {
    opts: ModelOptions,
    path: PathBuf,
    manifest: Option<Manifest>,
    weights: Vec<f32>,
    predictions: u64,
    checks: u64,
    /// The last check met a transient read error (the loaded weights stay in use).
    degraded: Option<String>,
}

impl ModelKernel {
    /// A model with these options (loaded by [`Kernel::start`]).
    pub fn new(opts: ModelOptions) -> ModelKernel {
        ModelKernel {
            opts,
            path: PathBuf::new(),
            manifest: None,
            weights: Vec::new(),
            predictions: 0,
            checks: 0,
            degraded: None,
        }
    }

    fn count(&self) -> usize {
        self.opts.outputs * self.opts.inputs + self.opts.outputs
    }

    /// Reads the weights and checks them against the manifest; returns the bytes.
    fn verify(&mut self) -> Result<Vec<u8>, KernelError> {
        let io = |context: String| move |source| KernelError::Io { context, source };
        let bytes = std::fs::read(&self.path)
            .map_err(io(format!("reading model weights {}", self.path.display())))?;
        let sum = hex::encode(Sha256::digest(&bytes));
        self.checks += 1;
        let Some(m) = &self.manifest else {
            return Ok(bytes);
        };
        if sum != m.sha256 {
            return Err(KernelError::failed(format!(
                "model weights {} have sha256 {sum}, but the manifest records {}; restore the \
                 file (restore_model_weights), or delete it and its manifest to regenerate",
                self.path.display(),
                m.sha256
            )));
        }
        if bytes.len() != self.count() * 4 {
            return Err(KernelError::failed(format!(
                "model weights {} hold {} bytes, {} expected for inputs {} and outputs {}",
                self.path.display(),
                bytes.len(),
                self.count() * 4,
                self.opts.inputs,
                self.opts.outputs
            )));
        }
        Ok(bytes)
    }

    /// Creates the weights (if absent) and the manifest (if absent).
    fn ensure_files(&mut self, name: &str) -> Result<(), KernelError> {
        let io = |context: String| move |source| KernelError::Io { context, source };
        let exists = self.path.try_exists().map_err(io(format!(
            "looking for model weights {}",
            self.path.display()
        )))?;
        if !exists {
            let bytes = generate(name, self.count());
            atomic_write(&self.path, &bytes)
                .map_err(io(format!("writing model weights {}", self.path.display())))?;
            tracing::info!(kernel = name, path = %self.path.display(), "model weights created");
        }
        let mpath = manifest_path(&self.path);
        match std::fs::read(&mpath) {
            Ok(b) => {
                let m: Manifest = serde_json::from_slice(&b).map_err(|e| {
                    KernelError::failed(format!(
                        "model manifest {} is unreadable ({e}); restore it or delete it to \
                         record the current weights",
                        mpath.display()
                    ))
                })?;
                self.manifest = Some(m);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = self.verify()?;
                let m = Manifest {
                    file: self
                        .path
                        .file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    bytes: bytes.len() as u64,
                    inputs: self.opts.inputs,
                    outputs: self.opts.outputs,
                };
                let json = serde_json::to_vec_pretty(&m)
                    .map_err(|e| KernelError::failed(e.to_string()))?;
                atomic_write(&mpath, &json)
                    .map_err(io(format!("writing model manifest {}", mpath.display())))?;
                self.manifest = Some(m);
            }
            Err(e) => return Err(io(format!("reading {}", mpath.display()))(e)),
        }
        Ok(())
    }

    fn predict(&self, input: &[f32]) -> (Vec<f32>, usize) {
        let (n, k) = (self.opts.inputs, self.opts.outputs);
        let logits: Vec<f32> = (0..k)
            .map(|o| {
                let row = &self.weights[o * n..(o + 1) * n];
                row.iter().zip(input).map(|(w, x)| w * x).sum::<f32>() + self.weights[k * n + o]
            })
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        let probs: Vec<f32> = exp.iter().map(|e| e / total).collect();
        let best = (0..k)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        (probs, best)
    }
}

#[async_trait]
impl Kernel for ModelKernel {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        let rel = self.opts.weights.clone();
        let rel = rel.unwrap_or_else(|| PathBuf::from(format!("models/{}.pt", ctx.name)));
        self.path = ctx.system.paths.root().join(rel);
        let name = ctx.name.to_string();
        let bytes = retry_transient(&START_RETRY_WAITS, || {
            self.ensure_files(&name)?;
            self.verify()
        })
        .await?;
        self.weights = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        let bad = |reason: String| KernelError::BadRequest {
            kernel: ctx.name.to_string(),
            reason,
        };
        match req.op.as_str() {
            "predict" => {
                let input: Vec<f32> = req
                    .args
                    .get("input")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_f64)
                            .map(|f| f as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                if input.len() != self.opts.inputs {
                    return Err(bad(format!(
                        "predict needs {{\"input\": [..]}} with {} numbers, got {}",
                        self.opts.inputs,
                        input.len()
                    )));
                }
                let (output, class) = self.predict(&input);
                self.predictions += 1;
                Ok(json!({ "output": output, "class": class }))
            }
            "stats" => Ok(self.stats()),
            other => Err(bad(format!(
                "unknown op {other:?}; model takes \"predict\" and \"stats\""
            ))),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        match self.verify() {
            Ok(_) => {
                self.degraded = None;
                Ok(())
            }
            Err(e) if transient(&e) => {
                tracing::warn!(kernel = %ctx.name, error = %e, "model check could not read the weights; keeping the loaded ones");
                self.degraded = Some(format!("cannot check the weights now: {e}"));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        match &self.degraded {
            Some(reason) => Health::Degraded {
                reason: reason.clone(),
            },
            None => Health::Healthy,
        }
    }

    fn stats(&self) -> Value {
        json!({
            "weights": self.path,
            "sha256": self.manifest.as_ref().map(|m| m.sha256.clone()),
            "inputs": self.opts.inputs,
            "outputs": self.opts.outputs,
            "predictions": self.predictions,
            "checks": self.checks,
            "degraded": self.degraded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_err(errno: i32) -> KernelError {
        KernelError::Io {
            context: "reading model weights".into(),
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn descriptor_exhaustion_and_interrupts_pass_and_the_rest_do_not() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::EAGAIN, libc::EINTR] {
            assert!(transient(&io_err(errno)), "errno {errno}");
        }
        for errno in [libc::EACCES, libc::EIO, libc::ENOENT, libc::EISDIR] {
            assert!(!transient(&io_err(errno)), "errno {errno}");
        }
        assert!(!transient(&KernelError::failed("checksum mismatch")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_error_is_retried_with_backoff_and_others_fail_at_once() {
        let t = tokio::time::Instant::now();
        let mut calls = 0;
        let r = retry_transient(&START_RETRY_WAITS, || {
            calls += 1;
            if calls <= 3 {
                Err(io_err(libc::EMFILE))
            } else {
                Ok(calls)
            }
        })
        .await;
        assert_eq!(r.expect("succeeds on the fourth attempt"), 4);
        assert_eq!(t.elapsed(), Duration::from_millis(10 + 20 + 40));

        let t = tokio::time::Instant::now();
        let mut calls = 0;
        let r: Result<(), _> = retry_transient(&START_RETRY_WAITS, || {
            calls += 1;
            Err(io_err(libc::EMFILE))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1 + START_RETRY_WAITS.len());
        assert_eq!(t.elapsed(), Duration::from_millis(310), "bounded");

        let mut calls = 0;
        let r: Result<(), _> = retry_transient(&START_RETRY_WAITS, || {
            calls += 1;
            Err(io_err(libc::EACCES))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "not transient: no retry");
    }

    #[test]
    fn generated_weights_are_deterministic_and_bounded() {
        let a = generate("m", 100);
        assert_eq!(a, generate("m", 100));
        assert_ne!(a, generate("n", 100));
        for c in a.chunks_exact(4) {
            let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            assert!((-1.0..1.0).contains(&f), "{f}");
        }
    }
}
