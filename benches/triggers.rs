//! Trigger benchmarks, each against a same-run baseline:
//!
//! 1. `ApiSignals::record` on the request path, one and two threads; baseline: one
//!    relaxed `fetch_add` on a shared counter;
//! 2. `ApiSignals::window` over a full sample ring (what api_timeout and kpi_threshold
//!    read per check); baseline: sorting as many integers;
//! 3. `GateBook::apply` (for, deduplication, flap detection) with 10,000 holding
//!    conditions per check; baseline: building a map of as many keys;
//! 4. one heartbeat_failure scan over 100,000 registered kernel statuses
//!    (`Registry::for_each` and `is_hung`); baseline: the same test over a plain vector.
//!
//! Benchmarks build tokio with `test-util` (a dev-dependency), whose clock reads go
//! through a lock; the release binary reads the monotonic clock directly, so the
//! figures that read the clock per item (record, the scan) are upper bounds.
//!
//! Run with: `cargo bench --bench triggers` (prints a table).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::Config;
use grace::incident::Severity;
use grace::kernel::{KernelSpec, KernelStatus};
use grace::state::StatePaths;
use grace::supervisor::{Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use grace::trigger::{Alert, ApiSignals, Finding, GateBook, Level, Rule};

fn per_op(total: Duration, n: usize) -> f64 {
    total.as_nanos() as f64 / n as f64
}

fn row(what: &str, ours: f64, base: f64, unit: &str) {
    println!(
        "{what:<44} {ours:>12.1} {unit:<3} {base:>12.1} {unit:<3} {:>7.2}x",
        ours / base
    );
}

fn record_threads(threads: usize, n: usize) -> (f64, f64) {
    let s = Arc::new(ApiSignals::default());
    let c = Arc::new(AtomicU64::new(0));
    let run = |f: Arc<dyn Fn() + Send + Sync>| {
        let t0 = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for _ in 0..n {
                        f();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
        per_op(t0.elapsed(), n)
    };
    let ours = {
        let s = s.clone();
        run(Arc::new(move || s.record(Duration::from_millis(12), false)))
    };
    let base = {
        let c = c.clone();
        run(Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }))
    };
    (ours, base)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "{:<44} {:>16} {:>16} {:>8}",
        "benchmark", "grace", "baseline", "ratio"
    );

    for threads in [1, 2] {
        let (o, b) = record_threads(threads, 2_000_000);
        row(
            &format!("ApiSignals::record, {threads} thread(s)"),
            o,
            b,
            "ns",
        );
    }

    let s = ApiSignals::default();
    for i in 0..20_000u64 {
        s.record(Duration::from_millis(i % 2000), i % 50 == 0);
    }
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(s.window(Duration::from_secs(60)));
    }
    let ours = per_op(t0.elapsed(), n) / 1000.0;
    let t0 = Instant::now();
    for k in 0..n as u64 {
        let mut v: Vec<u64> = (0..8192u64).map(|i| (i * 7919 + k) % 2000).collect();
        v.sort_unstable();
        black_box(v);
    }
    let base = per_op(t0.elapsed(), n) / 1000.0;
    row("ApiSignals::window(60 s), 8,192 samples", ours, base, "us");

    let conditions = 10_000;
    let alerts: Vec<Alert> = (0..conditions)
        .map(|i| {
            Alert::new(
                Level::Incident,
                "bench",
                &format!("k{i}"),
                "heartbeat_failure",
                Severity::High,
                Some("restart_kernel"),
                "summary",
            )
        })
        .collect();
    let rule = Rule::default();
    let mut book = GateBook::default();
    let checks = 50;
    let mut took = Duration::ZERO;
    for c in 0..checks {
        let f: Vec<Finding> = alerts.iter().cloned().map(Finding::Holds).collect();
        let t0 = Instant::now();
        black_box(book.apply(f, 1 + c * 5_000, &rule));
        took += t0.elapsed();
    }
    let ours = per_op(took, checks as usize) / 1000.0;
    let mut took = Duration::ZERO;
    for _ in 0..checks {
        let f: Vec<Alert> = alerts.clone();
        let t0 = Instant::now();
        let m: HashMap<String, Alert> = f.into_iter().map(|a| (a.key(), a)).collect();
        black_box(m);
        took += t0.elapsed();
    }
    let base = per_op(took, checks as usize) / 1000.0;
    row(
        "GateBook::apply, 10,000 holding conditions",
        ours,
        base,
        "us",
    );

    let kernels = 100_000;
    let (ours, base) = rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let system =
            System::open(Arc::new(Config::default()), StatePaths::new(dir.path())).expect("system");
        let sup = SupervisorHandle::start(
            SupervisorSpec::new("kernels", Strategy::OneForOne),
            system.clone(),
        )
        .await
        .expect("supervisor");
        let factory: grace::kernel::KernelFactory = Arc::new(|| unreachable!());
        let mut plain = Vec::with_capacity(kernels);
        for i in 0..kernels {
            let st = Arc::new(KernelStatus::new(&KernelSpec::new(
                format!("k{i}"),
                factory.clone(),
            )));
            st.mark_running();
            system.registry.register(st.clone(), sup.actor().clone());
            plain.push(st);
        }
        let n = 20;
        let t0 = Instant::now();
        for _ in 0..n {
            let mut hung = Vec::new();
            system.registry.for_each(|e| {
                if e.status.is_hung() {
                    hung.push(e.status.clone());
                }
            });
            black_box(hung);
        }
        let ours = per_op(t0.elapsed(), n) / 1e6;
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(plain.iter().filter(|s| s.is_hung()).count());
        }
        (ours, per_op(t0.elapsed(), n) / 1e6)
    });
    row("heartbeat_failure scan, 100,000 kernels", ours, base, "ms");
}
