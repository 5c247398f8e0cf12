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

/// Latencies (ns) of `RESTARTS` restarts driven through `inject`.
async fn drive<A: Clone>(
    rx: &mut UnboundedReceiver<(Instant, A)>,
    inject: impl Fn(&A),
) -> Vec<u64> {
    let (_, mut actor) = rx.recv().await.expect("first start");
    let mut lat = Vec::with_capacity(RESTARTS);
    for i in 0..WARMUP + RESTARTS {
        let t0 = Instant::now();
        inject(&actor);
        let (t1, next) = rx.recv().await.expect("restarted");
        if i >= WARMUP {
            lat.push(t1.saturating_duration_since(t0).as_nanos() as u64);
        }
        actor = next;
    }
    lat.sort_unstable();
    lat
}

async fn grace_restarts(in_place: bool) -> Vec<u64> {
    let (sys, _dir) = system();
    let (tx, mut rx) = unbounded_channel();
    let factory_tx = tx.clone();
    let spec = KernelSpec::new(
        "bench",
        Arc::new(move || {
            Box::new(FirstMessage {
                tx: factory_tx.clone(),
            }) as Box<dyn Kernel>
        }),
    )
    .restart_in_place(in_place);
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("bench", Strategy::OneForOne)
            .intensity(u32::MAX, Duration::from_secs(1))
            .child(ChildSpec::kernel(spec)),
        sys.clone(),
    )
    .await
    .expect("start supervisor");
    let lat = drive(&mut rx, |a: &ActorRef<KernelMsg>| {
        let _ = a.send_message(KernelMsg::Fault(Fault::Panic));
    })
    .await;
    sup.shutdown(Duration::from_secs(10)).await.expect("stop");
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

async fn bare_restarts() -> Vec<u64> {
    let (tx, mut rx) = unbounded_channel();
    let (parent, join) = Actor::spawn(None, BareParent, tx).await.expect("parent");
    let lat = drive(&mut rx, |a: &ActorRef<BareMsg>| {
        let _ = a.send_message(BareMsg::Panic);
    })
    .await;
    parent.kill();
    let _ = join.await;
    lat
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

struct Nop;

impl Actor for Nop {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn spawn_bare() -> (Duration, u64) {
    let (parent, _) = Actor::spawn(None, Nop, ()).await.expect("parent");
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let (c, _) = Actor::spawn_linked(None, Nop, (), parent.get_cell())
            .await
            .expect("child");
        children.push(c);
    }
    let took = t0.elapsed();
    let rss = rss_bytes().saturating_sub(rss0);
    parent.kill();
    (took, rss)
}

async fn spawn_grace() -> (Duration, u64) {
    let (sys, _dir) = system();
    let sup = SupervisorHandle::start(
        SupervisorSpec::new("dynamic", Strategy::OneForOne).max_children(SPAWNS),
        sys.clone(),
    )
    .await
    .expect("start");
    let factory: grace::kernel::KernelFactory = Arc::new(|| Box::new(Idle) as Box<dyn Kernel>);
    let rss0 = rss_bytes();
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
    let took = t0.elapsed();
    let rss = rss_bytes().saturating_sub(rss0);
    assert_eq!(sys.registry.len(), SPAWNS);
    sup.actor().kill();
    (took, rss)
}

fn spawn_in_child(which: &str) -> (f64, f64) {
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
    (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN))
}

fn runtime() -> tokio::runtime::Runtime {
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
    if let Some(which) =
        std::env::args().find_map(|a| a.strip_prefix("--child=").map(str::to_owned))
    {
        let (took, rss) = rt.block_on(async {
            match which.as_str() {
                "bare" => spawn_bare().await,
                _ => spawn_grace().await,
            }
        });
        println!(
            "result {} {}",
            took.as_secs_f64() * 1e6 / SPAWNS as f64,
            rss as f64 / SPAWNS as f64
        );
        return;
    }

    let bare = rt.block_on(bare_restarts());
    let full = rt.block_on(grace_restarts(false));
    let in_place = rt.block_on(grace_restarts(true));
    let (b50, b99) = (percentile(&bare, 0.5), percentile(&bare, 0.99));
    println!("\nrestart latency: panic -> replacement handles its first message ({RESTARTS} restarts each)\n");
    println!(
        "{:<34} {:>9} {:>9} {:>12}  target",
        "", "p50 µs", "p99 µs", "p50 vs bare"
    );
    println!(
        "{:<34} {:>9.2} {:>9.2} {:>12}",
        "bare ractor respawn (baseline)", b50, b99, "1.00x"
    );
    for (name, lat, target) in [
        ("grace full respawn", &full, "<= 1.5x bare"),
        ("grace restart in place", &in_place, "< 3 µs p50"),
    ] {
        let (p50, p99) = (percentile(lat, 0.5), percentile(lat, 0.99));
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>11.2}x  {target}",
            name,
            p50,
            p99,
            p50 / b50
        );
    }
    drop(rt);

    let (bt, bm) = spawn_in_child("bare");
    let (gt, gm) = spawn_in_child("grace");
    println!("\nspawn {SPAWNS} children under one supervisor (each side in its own process)\n");
    println!(
        "{:<34} {:>11} {:>11} {:>10}  target",
        "", "µs/child", "KB/child", "vs bare"
    );
    println!(
        "{:<34} {:>11.2} {:>11.2} {:>10}",
        "bare ractor linked actors",
        bt,
        bm / 1024.0,
        "1.00x"
    );
    println!(
        "{:<34} {:>11.2} {:>11.2} {:>9.2}x  < 10 µs, < 10 KB",
        "grace kernels via start_child",
        gt,
        gm / 1024.0,
        gt / bt
    );
    println!();
}
