//! Supervisor benchmarks, each against bare ractor in the same run:
//!
//! 1. restart latency: from a kernel's panic (in its own handler, on a request to
//!    panic) to its replacement handling its first message, p50/p99 over 20,000
//!    restarts, for a full respawn and for a restart in place; the baseline is a
//!    hand-written ractor parent that respawns its child on `ActorFailed`. The clock
//!    starts at the panic, so the delivery of the request is not counted;
//! 2. spawning 100,000 kernels under one dynamic supervisor: time and memory (RSS) per
//!    kernel, through `start_child` and as the children of a supervisor's spec; the
//!    baseline spawns as many bare ractor actors linked to one parent. Each side runs in
//!    its own process, so that neither reuses memory the other freed;
//! 3. shutting down 10,000 kernels whose stop hook takes 1 ms: a dynamic supervisor
//!    (children stopped concurrently) against a static one (one after another, the
//!    baseline).
//!
//! When `escript` is on PATH, the latency table also shows an Erlang/OTP supervisor
//! restarting a gen_server on the same machine (`benches/erlang/restart.escript`).
//!
//! Everything runs on a two-worker tokio runtime, driven from a worker, under the
//! allocator the `grace` binary uses (mimalloc).
//!
//! Run with: `cargo bench --bench supervisor` (prints a table).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use grace::config::Config;
use grace::kernel::{Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, Request};
use grace::state::StatePaths;
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[path = "support/shutdown.rs"]
mod shutdown;

// The allocator of the `grace` binary (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RESTARTS: usize = 20_000;
const WARMUP: usize = 1_000;
const SPAWNS: usize = 100_000;

type FirstTx = UnboundedSender<(Instant, ActorRef<KernelMsg>)>;

/// When the current incarnation (of whichever scenario runs) panicked.
static PANICKED_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// Notes the time and panics: the start of a timed restart.
fn panic_now() -> ! {
    *PANICKED_AT.lock().expect("clock slot") = Some(Instant::now());
    panic!("injected panic");
}

/// A kernel that, once started, sends itself one message and reports when it handles it;
/// it panics on a request to.
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
        match req.op.as_str() {
            "first" => {
                let _ = self.tx.send((Instant::now(), ctx.myself.clone()));
            }
            "panic" => panic_now(),
            _ => {}
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
            (self.inject)(&self.actor);
            let (t1, next) = self.rx.recv().await.expect("restarted");
            let t0 = PANICKED_AT.lock().expect("clock slot").take();
            if let (true, Some(t0)) = (record, t0) {
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
    let _ = a.send_message(KernelMsg::Request(Request::new("panic", Value::Null), None));
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
async fn restart_latencies(only: Option<String>) -> [Vec<u64>; 3] {
    let (tx, rx) = unbounded_channel();
    let (parent, join) = Actor::spawn(None, BareParent, tx).await.expect("parent");
    let mut bare = Driver::new(rx, None, inject_bare).await;
    let (mut full, full_sup, _d1) = grace_scenario(false).await;
    let (mut in_place, in_place_sup, _d2) = grace_scenario(true).await;
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
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
        panic!("injected panic");
    }
    n
}

/// OTP's restart latency on this machine, measured the same way by
/// `benches/erlang/restart.escript`: (p50, p99) in µs, or `None` without Erlang (or if
/// the script failed).
fn erlang_restart() -> Option<(f64, f64)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/erlang/restart.escript"
    );
    let out = std::process::Command::new("escript")
        .arg(script)
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|ns| ns / 1000.0)
    };
    Some((field("p50_ns=")?, field("p99_ns=")?))
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
            BareMsg::Panic => panic_now(),
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

/// CPU time this process has used (all threads): (user, system). On a loaded machine
/// wall time mostly measures waiting for a core; CPU time measures the work. System
/// time is mostly the kernel zeroing the pages that the new actors touch first (on a
/// virtual machine, whose host may back a page only when it is first touched, this
/// varies from run to run); user time is the spawning itself.
fn cpu_time() -> (Duration, Duration) {
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
    (
        Duration::from_millis(field(11) * 10),
        Duration::from_millis(field(12) * 10),
    )
}

/// What spawning cost: wall time, user and system CPU time, RSS growth.
struct SpawnCost {
    wall: Duration,
    user: Duration,
    sys: Duration,
    rss: u64,
}

/// Measures `work`, which spawns `SPAWNS` children.
async fn measure(work: impl std::future::Future<Output = ()>) -> SpawnCost {
    let rss0 = rss_bytes();
    let (user0, sys0) = cpu_time();
    let t0 = Instant::now();
    work.await;
    let wall = t0.elapsed();
    let (user1, sys1) = cpu_time();
    SpawnCost {
        wall,
        user: user1.saturating_sub(user0),
        sys: sys1.saturating_sub(sys0),
        rss: rss_bytes().saturating_sub(rss0),
    }
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
    let mut children = Vec::with_capacity(SPAWNS);
    let cost = measure(async {
        for _ in 0..SPAWNS {
            let (c, _) = Actor::spawn_linked(None, Nop, (), parent.get_cell())
                .await
                .expect("child");
            children.push(c);
        }
    })
    .await;
    parent.kill();
    cost
}

fn kernel_spec(i: usize, factory: &grace::kernel::KernelFactory) -> ChildSpec {
    ChildSpec::kernel(KernelSpec::new(format!("k{i}"), factory.clone()))
}

/// `SPAWNS` kernels added to a running dynamic supervisor, 256 `start_child` calls in
/// flight.
async fn spawn_grace() -> SpawnCost {
    let (sys, _dir) = system();
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("dynamic", Strategy::OneForOne).max_children(SPAWNS),
        sys.clone(),
    )
    .await
    .expect("start");
    let factory: grace::kernel::KernelFactory = Arc::new(|| Box::new(Idle) as Box<dyn Kernel>);
    let cost = measure(
        futures::stream::iter(0..SPAWNS)
            .map(|i| {
                let spec = kernel_spec(i, &factory);
                let sup = sup.clone();
                async move { sup.start_child(spec).await }
            })
            .buffer_unordered(256)
            .for_each(|r| {
                r.expect("start_child");
                futures::future::ready(())
            }),
    )
    .await;
    assert_eq!(sys.registry.len(), SPAWNS);
    sup.actor().kill();
    cost
}

/// `SPAWNS` kernels in a supervisor's spec: the supervisor starts them in order as it
/// starts (a tree from configuration).
async fn spawn_grace_spec() -> SpawnCost {
    let (sys, _dir) = system();
    let factory: grace::kernel::KernelFactory = Arc::new(|| Box::new(Idle) as Box<dyn Kernel>);
    let spec = (0..SPAWNS).fold(
        SupervisorSpec::new("static", Strategy::OneForOne),
        |s, i| s.child(kernel_spec(i, &factory)),
    );
    let mut sup = None;
    let cost = measure(async {
        sup = Some(
            SupervisorHandle::start(spec, sys.clone())
                .await
                .expect("start"),
        );
    })
    .await;
    assert_eq!(sys.registry.len(), SPAWNS);
    if let Some(sup) = sup {
        sup.actor().kill();
    }
    cost
}

/// Per child: wall µs, user CPU µs, system CPU µs, bytes; the faster of two runs, each
/// in a fresh process. On a virtual machine whose host takes back the memory a process
/// frees, the run that touches pages the host no longer backs pays for it again in
/// system time, by a factor that varies with what ran before; the other run does not.
fn spawn_in_child(which: &str) -> [f64; 4] {
    let a = spawn_once(which);
    let b = spawn_once(which);
    if a[0] <= b[0] {
        a
    } else {
        b
    }
}

fn spawn_once(which: &str) -> [f64; 4] {
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
    [(); 4].map(|()| it.next().unwrap_or(f64::NAN))
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
    // 20,000 panic messages on stderr would measure the terminal, not the supervisor;
    // any other panic is reported.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"injected panic") {
            report(info);
        }
    }));
    let rt = runtime();
    let arg =
        |prefix: &str| std::env::args().find_map(|a| a.strip_prefix(prefix).map(str::to_owned));
    if let Some(which) = arg("--child=") {
        // On a worker, as a supervisor or a kernel's client runs.
        let cost = rt
            .block_on(rt.spawn(async move {
                match which.as_str() {
                    "bare" => spawn_bare().await,
                    "spec" => spawn_grace_spec().await,
                    _ => spawn_grace().await,
                }
            }))
            .expect("spawn run");
        let per = |d: Duration| d.as_secs_f64() * 1e6 / SPAWNS as f64;
        println!(
            "result {} {} {} {}",
            per(cost.wall),
            per(cost.user),
            per(cost.sys),
            cost.rss as f64 / SPAWNS as f64
        );
        // Tearing 100,000 actors down is not what is measured: leave at once.
        std::process::exit(0);
    }

    // `--only=bare|full|in_place` runs one latency scenario alone (for profiling).
    let only = arg("--only=");
    // The driver runs on a worker, as a kernel's clients would.
    let [bare, full, in_place] = rt
        .block_on(rt.spawn(restart_latencies(only.clone())))
        .expect("latency run");
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
        "\nrestart latency: panic (in the kernel's handler) -> replacement handles its first message \
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
    match erlang_restart() {
        Some((p50, p99)) => println!(
            "{:<36} {:>9.2} {:>9.2} {:>11.2}x  (same machine, reports off)",
            "Erlang/OTP supervisor restart",
            p50,
            p99,
            p50 / b50
        ),
        None => println!(
            "(Erlang/OTP row skipped: `escript benches/erlang/restart.escript` did not run \
             or printed no result; Erlang is not needed otherwise)"
        ),
    }

    let bare = spawn_in_child("bare");
    println!(
        "\nspawn {SPAWNS} children under one supervisor (each side in its own process, \
         faster of two runs)\n"
    );
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8} {:>11}  target",
        "", "wall µs", "user µs", "sys µs", "KB", "user vs bare"
    );
    let row = |name: &str, [wall, user, sys, bytes]: [f64; 4], target: &str| {
        println!(
            "{name:<40} {wall:>8.2} {user:>8.2} {sys:>8.2} {:>8.2} {:>11.2}x  {target}",
            bytes / 1024.0,
            user / bare[1]
        );
    };
    row("bare ractor linked actors (baseline)", bare, "");
    row(
        "grace kernels via start_child",
        spawn_in_child("grace"),
        "< 10 µs, < 10 KB per kernel",
    );
    row(
        "grace kernels in a supervisor's spec",
        spawn_in_child("spec"),
        "",
    );

    let rt = runtime();
    let (dynamic, sequential) = rt
        .block_on(rt.spawn(shutdown::shutdown_times()))
        .expect("shutdown run");
    println!(
        "\nshutdown of {} kernels whose stop hook takes 1 ms\n",
        shutdown::CHILDREN
    );
    println!("{:<40} {:>10} {:>14}", "", "seconds", "vs sequential");
    println!(
        "{:<40} {:>10.3} {:>13.2}x",
        "static supervisor, sequential (baseline)", sequential, 1.0
    );
    println!(
        "{:<40} {:>10.3} {:>13.3}x",
        "dynamic supervisor, concurrent",
        dynamic,
        dynamic / sequential
    );
    println!();
}
