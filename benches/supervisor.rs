//! Supervisor benchmarks, each against bare ractor in the same run:
//!
//! 1. restart latency: from a kernel's panic (an injected `Fault::Panic`) to its
//!    replacement handling its first message, p50/p99 over 20,000 restarts, for a full
//!    respawn and for a restart in place; the baseline is a hand-written ractor parent
//!    that respawns its child on `ActorFailed`;
//! 2. spawning 100,000 kernels under one dynamic supervisor: time and memory (RSS) per
//!    kernel; the baseline spawns as many bare ractor actors linked to one parent. Each
//!    side runs in its own process, so that neither reuses memory the other freed.
//!
//! Run with: `cargo bench --bench supervisor` (prints a table).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use grace::config::Config;
use grace::kernel::{Fault, Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, Request};
use grace::state::StatePaths;
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const RESTARTS: usize = 20_000;
const WARMUP: usize = 1_000;
const SPAWNS: usize = 100_000;

type FirstTx = UnboundedSender<(Instant, ActorRef<KernelMsg>)>;

/// A kernel that, once started, sends itself one message and reports when it handles it.
struct FirstMessage {
    tx: FirstTx,
}

#[async_trait]
impl Kernel for FirstMessage {
    async fn start(&mut self, ctx: &KernelContext) -> Result<(), KernelError> {
        ctx.send_self(Request::new("first", Value::Null));
        Ok(())
    }

    async fn handle(&mut self, req: Request, ctx: &KernelContext) -> Result<Value, KernelError> {
        if req.op == "first" {
            let _ = self.tx.send((Instant::now(), ctx.myself.clone()));
        }
        Ok(Value::Null)
    }
}

/// A kernel that does nothing (for the spawn benchmark).
struct Idle;

#[async_trait]
impl Kernel for Idle {
    async fn handle(&mut self, _req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }
}

fn system() -> (Arc<System>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = System::open(Arc::new(Config::default()), StatePaths::new(dir.path()))
        .expect("open system");
    (sys, dir)
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Latencies (ns) of `RESTARTS` restarts driven through `inject`. Between restarts,
/// outside the timed part, `bus` (if any) is emptied as `message_bus` would, so that its
/// queue does not grow without bound.
/// Drives restarts of one scenario: injects a panic into the current incarnation and
/// waits for the replacement's report of its first message.
struct Driver<A> {
    rx: UnboundedReceiver<(Instant, A)>,
    actor: A,
    bus: Option<grace::bus::Bus>,
    inject: fn(&A),
    lat: Vec<u64>,
}

impl<A> Driver<A> {
    async fn new(
        mut rx: UnboundedReceiver<(Instant, A)>,
        bus: Option<grace::bus::Bus>,
        inject: fn(&A),
    ) -> Driver<A> {
        let (_, actor) = rx.recv().await.expect("first start");
        Driver {
            rx,
            actor,
            bus,
            inject,
            lat: Vec::with_capacity(RESTARTS),
        }
    }

    /// `n` restarts, recorded or not. Between restarts, outside the timed part, the bus
    /// (if any) is emptied as `message_bus` would, so that its queue stays short.
    async fn run(&mut self, n: usize, record: bool) {
        for i in 0..n {
            if let (Some(bus), 0) = (&self.bus, i % 64) {
                while bus.pump(4096, Duration::ZERO).await > 0 {}
            }
            let t0 = Instant::now();
            (self.inject)(&self.actor);
            let (t1, next) = self.rx.recv().await.expect("restarted");
            if record {
                self.lat
                    .push(t1.saturating_duration_since(t0).as_nanos() as u64);
            }
            self.actor = next;
        }
    }

    fn sorted(mut self) -> Vec<u64> {
        self.lat.sort_unstable();
        self.lat
    }
}

fn inject_kernel(a: &ActorRef<KernelMsg>) {
    let _ = a.send_message(KernelMsg::Fault(Fault::Panic));
}

fn inject_bare(a: &ActorRef<BareMsg>) {
    let _ = a.send_message(BareMsg::Panic);
}

/// A one-kernel supervisor whose kernel reports its first message after each start.
async fn grace_scenario(
    in_place: bool,
) -> (
    Driver<ActorRef<KernelMsg>>,
    SupervisorHandle,
    tempfile::TempDir,
) {
    let (sys, dir) = system();
    let (tx, rx) = unbounded_channel();
    let spec = KernelSpec::new(
        "bench",
        Arc::new(move || Box::new(FirstMessage { tx: tx.clone() }) as Box<dyn Kernel>),
    )
    .restart_in_place(in_place);
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("bench", Strategy::OneForOne)
            // Generous but bounded: the ring of restart times stays small.
            .intensity(10_000, Duration::from_millis(10))
            .child(ChildSpec::kernel(spec)),
        sys.clone(),
    )
    .await
    .expect("start supervisor");
    let driver = Driver::new(rx, Some(sys.bus.clone()), inject_kernel).await;
    (driver, sup, dir)
}

/// The latencies of the three scenarios (bare, full, in place), run in interleaved
/// rounds so that a noisy machine affects them alike.
async fn restart_latencies(only: Option<&str>) -> [Vec<u64>; 3] {
    let (tx, rx) = unbounded_channel();
    let (parent, join) = Actor::spawn(None, BareParent, tx).await.expect("parent");
    let mut bare = Driver::new(rx, None, inject_bare).await;
    let (mut full, full_sup, _d1) = grace_scenario(false).await;
    let (mut in_place, in_place_sup, _d2) = grace_scenario(true).await;
    let want = |name: &str| only.is_none_or(|o| o == name);
    let rounds = 20;
    for round in 0..=rounds {
        // Round 0 warms up and is not recorded.
        let (n, record) = if round == 0 {
            (WARMUP, false)
        } else {
            (RESTARTS / rounds, true)
        };
        if want("bare") {
            bare.run(n, record).await;
        }
        if want("full") {
            full.run(n, record).await;
        }
        if want("in_place") {
            in_place.run(n, record).await;
        }
    }
    full_sup
        .shutdown(Duration::from_secs(10))
        .await
        .expect("stop");
    in_place_sup
        .shutdown(Duration::from_secs(10))
        .await
        .expect("stop");
    parent.kill();
    let _ = join.await;
    [bare.sorted(), full.sorted(), in_place.sorted()]
}

#[inline(never)]
fn panics(n: usize) -> usize {
    if n < usize::MAX {
        panic!("injected panic in kernel {n}");
    }
    n
}

/// The floor under any restart after a panic: the panic and its `catch_unwind` alone.
fn panic_floor() -> Vec<u64> {
    let mut lat: Vec<u64> = (0..RESTARTS)
        .map(|i| {
            let t0 = Instant::now();
            let r = std::panic::catch_unwind(|| panics(i));
            std::hint::black_box(r.is_err());
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    lat.sort_unstable();
    lat
}

// The baseline: a bare ractor parent that respawns its child on ActorFailed.

enum BareMsg {
    First,
    Panic,
}

struct BareChild;

impl Actor for BareChild {
    type Msg = BareMsg;
    type State = UnboundedSender<(Instant, ActorRef<BareMsg>)>;
    type Arguments = UnboundedSender<(Instant, ActorRef<BareMsg>)>;

    async fn pre_start(
        &self,
        myself: ActorRef<BareMsg>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let _ = myself.send_message(BareMsg::First);
        Ok(tx)
    }

    async fn handle(
        &self,
        myself: ActorRef<BareMsg>,
        msg: BareMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BareMsg::First => {
                let _ = tx.send((Instant::now(), myself));
                Ok(())
            }
            BareMsg::Panic => panic!("injected panic"),
        }
    }
}

struct BareParent;

impl Actor for BareParent {
    type Msg = ();
    type State = UnboundedSender<(Instant, ActorRef<BareMsg>)>;
    type Arguments = UnboundedSender<(Instant, ActorRef<BareMsg>)>;

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Actor::spawn_linked(None, BareChild, tx.clone(), myself.get_cell()).await?;
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(..) = evt {
            Actor::spawn_linked(None, BareChild, tx.clone(), myself.get_cell()).await?;
        }
        Ok(())
    }
}

// Spawning many children, each side in its own process.

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time (user + system, all threads) this process has used. On a loaded machine
/// wall time mostly measures waiting for a core; CPU time measures the work.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let field = |i: usize| -> u64 {
        after_name
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second).
    Duration::from_millis((field(11) + field(12)) * 10)
}

/// What spawning cost: wall time, CPU time, RSS growth.
struct SpawnCost {
    wall: Duration,
    cpu: Duration,
    rss: u64,
}

struct Nop;

impl Actor for Nop {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn spawn_bare() -> SpawnCost {
    let (parent, _) = Actor::spawn(None, Nop, ()).await.expect("parent");
    let rss0 = rss_bytes();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let (c, _) = Actor::spawn_linked(None, Nop, (), parent.get_cell())
            .await
            .expect("child");
        children.push(c);
    }
    let cost = SpawnCost {
        wall: t0.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
        rss: rss_bytes().saturating_sub(rss0),
    };
    parent.kill();
    cost
}

async fn spawn_grace() -> SpawnCost {
    let (sys, _dir) = system();
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("dynamic", Strategy::OneForOne).max_children(SPAWNS),
        sys.clone(),
    )
    .await
    .expect("start");
    let factory: grace::kernel::KernelFactory = Arc::new(|| Box::new(Idle) as Box<dyn Kernel>);
    let rss0 = rss_bytes();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    futures::stream::iter(0..SPAWNS)
        .map(|i| {
            let spec = ChildSpec::kernel(KernelSpec::new(format!("k{i}"), factory.clone()));
            let sup = sup.clone();
            async move { sup.start_child(spec).await }
        })
        .buffer_unordered(256)
        .for_each(|r| {
            r.expect("start_child");
            futures::future::ready(())
        })
        .await;
    let cost = SpawnCost {
        wall: t0.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
        rss: rss_bytes().saturating_sub(rss0),
    };
    assert_eq!(sys.registry.len(), SPAWNS);
    sup.actor().kill();
    cost
}

/// Per child: wall µs, CPU µs, bytes.
fn spawn_in_child(which: &str) -> (f64, f64, f64) {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg(format!("--child={which}"))
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_else(|| panic!("child {which} printed no result: {text}"));
    let mut it = line
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    let mut next = || it.next().unwrap_or(f64::NAN);
    (next(), next(), next())
}

fn runtime() -> tokio::runtime::Runtime {
    // GRACE_BENCH_CURRENT_THREAD=1: a single-threaded runtime (steadier for profiling).
    if std::env::var_os("GRACE_BENCH_CURRENT_THREAD").is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    // 20,000 panic messages on stderr would measure the terminal, not the supervisor.
    std::panic::set_hook(Box::new(|_| {}));
    let rt = runtime();
    let arg =
        |prefix: &str| std::env::args().find_map(|a| a.strip_prefix(prefix).map(str::to_owned));
    if let Some(which) = arg("--child=") {
        let cost = rt.block_on(async {
            match which.as_str() {
                "bare" => spawn_bare().await,
                _ => spawn_grace().await,
            }
        });
        let per = |d: Duration| d.as_secs_f64() * 1e6 / SPAWNS as f64;
        println!(
            "result {} {} {}",
            per(cost.wall),
            per(cost.cpu),
            cost.rss as f64 / SPAWNS as f64
        );
        return;
    }

    // `--only=bare|full|in_place` runs one latency scenario alone (for profiling).
    let only = arg("--only=");
    let [bare, full, in_place] = rt.block_on(restart_latencies(only.as_deref()));
    if only.is_some() {
        for (name, lat) in [("bare", bare), ("full", full), ("in_place", in_place)] {
            if !lat.is_empty() {
                let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
                println!("{name}: p50 {p50:.2} µs, p99 {p99:.2} µs");
            }
        }
        return;
    }
    let floor = panic_floor();
    let (b50, b99) = (percentile(&bare, 0.5), percentile(&bare, 0.99));
    println!(
        "\nrestart latency: panic -> replacement handles its first message \
         ({RESTARTS} restarts each, interleaved rounds)\n"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>12}  target",
        "", "p50 µs", "p99 µs", "p50 vs bare"
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>12}",
        "bare ractor respawn (baseline)", b50, b99, "1.00x"
    );
    for (name, lat, target) in [
        ("grace full respawn", &full, "<= 1.5x bare"),
        ("grace restart in place", &in_place, "< 3 µs p50"),
        ("panic + catch_unwind alone (floor)", &floor, ""),
    ] {
        let (p50, p99) = (percentile(lat, 0.5), percentile(lat, 0.99));
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>11.2}x  {target}",
            name,
            p50,
            p99,
            p50 / b50
        );
    }
    drop(rt);

    let (bt, bc, bm) = spawn_in_child("bare");
    let (gt, gc, gm) = spawn_in_child("grace");
    println!("\nspawn {SPAWNS} children under one supervisor (each side in its own process)\n");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>12}  target",
        "", "wall µs", "CPU µs", "KB", "CPU vs bare"
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>12}",
        "bare ractor linked actors",
        bt,
        bc,
        bm / 1024.0,
        "1.00x"
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>11.2}x  < 10 µs, < 10 KB per kernel",
        "grace kernels via start_child",
        gt,
        gc,
        gm / 1024.0,
        gc / bc
    );
    println!();
}
