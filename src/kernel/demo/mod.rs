//! Demo kernels that do real work, run by the embedded default configuration so that
//! `grace serve` with no config is a living system that every trigger, playbook and
//! chaos scenario can act on.
//!
//! - [`WorkerPoolKernel`] (`worker_pool`): a job queue drained by async workers that hash
//!   buffers, with its own load generator; `scale` and `shed_load` act on it.
//! - [`KvStoreKernel`] (`kv_store`): an in-memory map that snapshots itself atomically and
//!   reloads on start; `clear_caches` drops its read cache.
//! - [`ModelKernel`] (`model`): a weights file checked against its manifest at start and
//!   at every tick; `predict` runs a small layer over the weights.

mod kv_store;
mod model;
mod worker_pool;
mod worker_pool_options;

pub use kv_store::{KvStoreKernel, KvStoreOptions};
pub use model::{manifest_path, Manifest, ModelKernel, ModelOptions};
pub use worker_pool::{WorkerPoolKernel, WorkerPoolOptions};
