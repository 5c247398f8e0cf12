//! The `worker_pool` demo kernel: a job queue drained by N async workers that hash
//! buffers, fed by its own load generator. It gives the latency-queue trigger a backlog to
//! watch and the `scale_workers` and `shed_load` playbooks something real to act on.
//! Workers added above the configured number are removed again once the queue has
//! stayed empty for `scale_down_after`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use super::worker_pool_options::WorkerPoolOptions;
use crate::kernel::{Health, Kernel, KernelContext, KernelError, Request};

/// How often the load generator adds jobs.
const GENERATE_EVERY: Duration = Duration::from_millis(100);
/// The most jobs one `enqueue` request may add.
const MAX_ENQUEUE: u64 = 100_000;

struct Job {
    id: u64,
    bytes: usize,
    low: bool,
}

/// The queue and counters, shared by the kernel and its worker tasks.
#[derive(Default)]
struct Pool {
    queue: Mutex<VecDeque<Job>>,
    notify: Notify,
    next_id: AtomicU64,
    processed: AtomicU64,
    shed: AtomicU64,
    rejected: AtomicU64,
    shedding: AtomicBool,
    digest: AtomicU64,
    max_backlog: usize,
}

impl Pool {
    /// Adds `count` jobs; returns (accepted, shed, rejected).
    fn enqueue(&self, count: u64, bytes: usize, low: impl Fn(u64) -> bool) -> (u64, u64, u64) {
        let (mut accepted, mut shed, mut rejected) = (0, 0, 0);
        {
            let mut q = self.queue.lock();
            let shedding = self.shedding.load(Ordering::Relaxed);
            for _ in 0..count {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let low = low(id);
                if shedding && low {
                    shed += 1;
                } else if q.len() >= self.max_backlog {
                    rejected += 1;
                } else {
                    q.push_back(Job { id, bytes, low });
                    accepted += 1;
                }
            }
        }
        self.shed.fetch_add(shed, Ordering::Relaxed);
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
        for _ in 0..accepted.min(64) {
            self.notify.notify_one();
        }
        (accepted, shed, rejected)
    }

    fn backlog(&self) -> usize {
        self.queue.lock().len()
    }

    /// The work of one job: SHA-256 over `bytes` bytes derived from its id.
    fn work(&self, job: &Job) {
        let mut block = [0u8; 4096];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (job.id as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        let mut h = Sha256::new();
        let mut left = job.bytes;
        while left > 0 {
            let n = left.min(block.len());
            h.update(&block[..n]);
            left -= n;
        }
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        self.digest
            .fetch_xor(u64::from_le_bytes(first), Ordering::Relaxed);
        self.processed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A worker: takes jobs until the queue is empty, then waits. It awaits only between
/// jobs, so aborting it (scaling down) never loses a job it took.
async fn worker(pool: Arc<Pool>) {
    loop {
        let job = pool.queue.lock().pop_front();
        match job {
            Some(job) => {
                pool.work(&job);
                tokio::task::yield_now().await;
            }
            None => pool.notify.notified().await,
        }
    }
}

async fn generator(pool: Arc<Pool>, rate: f64, bytes: usize, low: f64) {
    let mut tick = tokio::time::interval(GENERATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_tick = rate * GENERATE_EVERY.as_secs_f64();
    let mut carry = 0.0;
    loop {
        tick.tick().await;
        carry += per_tick;
        let n = carry.floor();
        carry -= n;
        pool.enqueue(n as u64, bytes, |id| is_low(id, low));
    }
}

/// Whether generated job `id` is low priority, for a fraction `low` of them.
fn is_low(id: u64, low: f64) -> bool {
    ((id % 1000) as f64) < low * 1000.0
}

/// The `worker_pool` kernel.
pub struct WorkerPoolKernel {
    opts: WorkerPoolOptions,
    pool: Arc<Pool>,
    workers: Vec<JoinHandle<()>>,
    generator: Option<JoinHandle<()>>,
    /// Since when the queue has been empty, seen at ticks.
    idle_since: Option<std::time::Instant>,
    scaled_down: u64,
}

impl WorkerPoolKernel {
    /// A pool with these options (started by [`Kernel::start`]).
    pub fn new(opts: WorkerPoolOptions) -> WorkerPoolKernel {
        let pool = Arc::new(Pool {
            max_backlog: opts.max_backlog,
            ..Pool::default()
        });
        WorkerPoolKernel {
            opts,
            pool,
            workers: Vec::new(),
            generator: None,
            idle_since: None,
            scaled_down: 0,
        }
    }

    /// Removes the workers above the configured number once the queue has been empty
    /// for `scale_down_after`.
    fn scale_down_when_idle(&mut self) {
        if self.pool.backlog() > 0 || self.workers.len() <= self.opts.workers {
            self.idle_since = None;
            return;
        }
        let since = *self.idle_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= self.opts.scale_down_after {
            let from = self.workers.len();
            self.resize(self.opts.workers);
            self.scaled_down += 1;
            self.idle_since = None;
            tracing::info!(
                from,
                to = self.opts.workers,
                "queue drained; extra workers removed"
            );
        }
    }

    fn resize(&mut self, n: usize) {
        while self.workers.len() < n {
            self.workers.push(tokio::spawn(worker(self.pool.clone())));
        }
        while self.workers.len() > n {
            if let Some(w) = self.workers.pop() {
                w.abort();
            }
        }
    }

    fn bad(ctx: &KernelContext, reason: String) -> KernelError {
        KernelError::BadRequest {
            kernel: ctx.name.to_string(),
            reason,
        }
    }
}

impl Drop for WorkerPoolKernel {
    fn drop(&mut self) {
        self.workers.iter().for_each(JoinHandle::abort);
        if let Some(g) = &self.generator {
            g.abort();
        }
    }
}

#[async_trait]
impl Kernel for WorkerPoolKernel {
    async fn start(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        self.resize(self.opts.workers);
        if self.opts.rate > 0.0 {
            let o = &self.opts;
            let g = generator(self.pool.clone(), o.rate, o.job_bytes, o.low_priority);
            self.generator = Some(tokio::spawn(g));
        }
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        match req.op.as_str() {
            "enqueue" => {
                let count = req.args.get("count").and_then(Value::as_u64).unwrap_or(1);
                if count > MAX_ENQUEUE {
                    return Err(Self::bad(ctx, format!("count is above {MAX_ENQUEUE}")));
                }
                let low = match req.args.get("priority").and_then(Value::as_str) {
                    None | Some("high") => false,
                    Some("low") => true,
                    Some(p) => {
                        return Err(Self::bad(ctx, format!("priority {p:?}: use high or low")))
                    }
                };
                let bytes = req.args.get("bytes").and_then(Value::as_u64);
                let bytes = bytes.map_or(self.opts.job_bytes, |b| (b as usize).clamp(1, 16 << 20));
                let (accepted, shed, rejected) = self.pool.enqueue(count, bytes, |_| low);
                Ok(json!({
                    "accepted": accepted, "shed": shed, "rejected": rejected,
                    "backlog": self.pool.backlog(),
                }))
            }
            "stats" => Ok(self.stats()),
            other => Err(Self::bad(
                ctx,
                format!("unknown op {other:?}; worker_pool takes \"enqueue\" and \"stats\""),
            )),
        }
    }

    fn ticks(&self) -> bool {
        true
    }

    async fn tick(&mut self, _ctx: &KernelContext) -> Result<(), KernelError> {
        // A worker only ends by panicking: the pool has lost capacity it cannot see.
        if self.workers.iter().any(JoinHandle::is_finished) {
            return Err(KernelError::failed("a worker task died"));
        }
        self.scale_down_when_idle();
        Ok(())
    }

    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        let backlog = self.pool.backlog();
        if backlog * 5 >= self.opts.max_backlog * 4 {
            return Health::Degraded {
                reason: format!("backlog {backlog} near its limit {}", self.opts.max_backlog),
            };
        }
        Health::Healthy
    }

    async fn shed_load(&mut self, on: bool, _ctx: &KernelContext) -> Result<Value, KernelError> {
        self.pool.shedding.store(on, Ordering::Relaxed);
        let mut dropped = 0u64;
        if on {
            let mut q = self.pool.queue.lock();
            let before = q.len();
            q.retain(|j| !j.low);
            dropped = (before - q.len()) as u64;
        }
        self.pool.shed.fetch_add(dropped, Ordering::Relaxed);
        Ok(json!({ "shedding": on, "dropped_from_queue": dropped }))
    }

    async fn scale(&mut self, size: usize, ctx: &KernelContext) -> Result<Value, KernelError> {
        if size > self.opts.max_workers {
            let max = self.opts.max_workers;
            return Err(Self::bad(
                ctx,
                format!("{size} workers is above max_workers {max}"),
            ));
        }
        let before = self.workers.len();
        self.resize(size);
        Ok(json!({ "workers": size, "previous": before }))
    }

    fn stats(&self) -> Value {
        let p = &self.pool;
        json!({
            "workers": self.workers.len(),
            "base_workers": self.opts.workers,
            "max_workers": self.opts.max_workers,
            "scaled_down": self.scaled_down,
            "backlog": p.backlog(),
            "processed": p.processed.load(Ordering::Relaxed),
            "generated": p.next_id.load(Ordering::Relaxed),
            "shed": p.shed.load(Ordering::Relaxed),
            "rejected": p.rejected.load(Ordering::Relaxed),
            "shedding": p.shedding.load(Ordering::Relaxed),
            "max_backlog": self.opts.max_backlog,
            "rate": self.opts.rate,
            "digest": format!("{:016x}", p.digest.load(Ordering::Relaxed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_priority_fraction_is_respected() {
        let n = (0..10_000).filter(|&id| is_low(id, 0.25)).count();
        assert_eq!(n, 2_500);
        assert_eq!((0..1000).filter(|&id| is_low(id, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&id| is_low(id, 1.0)).count(), 1000);
    }

    #[test]
    fn enqueue_sheds_low_jobs_and_rejects_past_the_backlog() {
        let pool = Pool {
            max_backlog: 3,
            ..Pool::default()
        };
        pool.shedding.store(true, Ordering::Relaxed);
        assert_eq!(pool.enqueue(2, 8, |_| true), (0, 2, 0));
        assert_eq!(pool.enqueue(5, 8, |_| false), (3, 0, 2));
        assert_eq!(pool.backlog(), 3);
    }
}
