//! CPU cost of hang detection: a tree of idle kernels, measured in the same run with
//! no heartbeat tasks (baseline), with the ticker and monitor over kernels that do not
//! tick (hang detection by busy handlers: idle kernels cost nothing), and with the same
//! kernels made to tick every second (the cost of ticking and scanning every kernel, as
//! liveness by ticks alone needs). Then the per-message cost of the busy stamps: the
//! stamp pair alone, and kernels handling messages against bare ractor actors doing the
//! same.
//!
//! Run with: `cargo bench --bench heartbeat` (options: `--kernels N`, `--seconds S`,
//! `--ticking 0` to skip the ticking phase, for very large N).
//! Target: hang detection under 1% of one core for idle kernels, at any N.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use grace::config::{Config, HeartbeatConfig};
use grace::kernel::{
    spawn_kernel, Kernel, KernelContext, KernelError, KernelMsg, KernelSpec, KernelState,
    KernelStatus, Request,
};
use grace::state::StatePaths;
use grace::supervisor::SupervisorMsg;
use grace::tree::{spawn_heartbeat, System};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;

// The allocator of the `grace` binary (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A kernel that answers requests and does not tick.
struct Idle;

#[async_trait]
impl Kernel for Idle {
    async fn handle(&mut self, _: Request, _: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }
}

/// Stands in for the kernels' supervisor: receives nothing of interest.
struct Parent;

impl Actor for Parent {
    type Msg = SupervisorMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SupervisorMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A bare ractor actor that counts its messages.
struct Bare;

impl Actor for Bare {
    type Msg = KernelMsg;
    type State = Arc<std::sync::atomic::AtomicU64>;
    type Arguments = Arc<std::sync::atomic::AtomicU64>;

    async fn pre_start(
        &self,
        _: ActorRef<KernelMsg>,
        n: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(n)
    }

    async fn handle(
        &self,
        _: ActorRef<KernelMsg>,
        _: KernelMsg,
        n: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// User plus system CPU time of this process, in seconds, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of USER_HZ, which Linux fixes at 100 for /proc).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // After "pid (comm)": state is field 3, so utime (14) and stime (15) are at 11, 12.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Phase {
    name: &'static str,
    cpu_s: f64,
    wall_s: f64,
    ticks: u64,
}

impl Phase {
    fn percent(&self) -> f64 {
        100.0 * self.cpu_s / self.wall_s
    }
}

async fn measure(name: &'static str, seconds: u64, statuses: &[Arc<KernelStatus>]) -> Phase {
    let ticks = |s: &[Arc<KernelStatus>]| s.iter().map(|k| k.messages()).sum::<u64>();
    let (t0, c0, m0) = (Instant::now(), cpu_seconds(), ticks(statuses));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Phase {
        name,
        cpu_s: cpu_seconds() - c0,
        wall_s: t0.elapsed().as_secs_f64(),
        ticks: ticks(statuses) - m0,
    }
}

async fn run(kernels: u64, seconds: u64, ticking: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let system =
        System::open(Arc::new(Config::default()), StatePaths::new(dir.path())).expect("system");
    let (parent, _) = Actor::spawn(None, Parent, ()).await.expect("parent");
    let mut statuses = Vec::with_capacity(kernels as usize);
    let mut actors = Vec::with_capacity(kernels as usize);
    let t0 = Instant::now();
    for i in 0..kernels {
        let spec = KernelSpec::new(
            format!("k{i}"),
            Arc::new(|| Box::new(Idle) as Box<dyn Kernel>),
        )
        .heartbeat(Duration::from_secs(1), Duration::from_secs(60));
        let status = Arc::new(KernelStatus::new(&spec));
        let actor = spawn_kernel(&spec, status.clone(), system.clone(), parent.clone())
            .await
            .expect("kernel starts");
        system.registry.register(status.clone(), parent.clone());
        system.registry.set_actor(&spec.name, Some(actor.clone()));
        status.set_state(KernelState::Running);
        statuses.push(status);
        actors.push(actor);
    }
    println!(
        "started {kernels} idle kernels in {:.2} s; measuring {seconds} s per phase",
        t0.elapsed().as_secs_f64()
    );
    // Let start-up work settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = measure("no heartbeat (baseline)", seconds, &statuses).await;

    let cfg = HeartbeatConfig {
        interval: Duration::from_secs(1),
        ..HeartbeatConfig::default()
    };
    let hb = spawn_heartbeat(system.clone(), cfg.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = measure("busy-handler detection", seconds, &statuses).await;
    let hung = statuses.iter().filter(|s| s.is_hung()).count();

    let mut phases = vec![base, idle];
    if ticking {
        for s in &statuses {
            s.set_ticks(true);
        }
        system.liveness.ticking_changed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        phases.push(measure("all ticking every 1 s", seconds, &statuses).await);
        for s in &statuses {
            s.set_ticks(false);
        }
        system.liveness.ticking_changed();
    }
    drop(hb);

    println!();
    println!(
        "{:<26} {:>8} {:>8} {:>10} {:>12}",
        "phase", "cpu_s", "% core", "messages", "messages/s"
    );
    for p in &phases {
        println!(
            "{:<26} {:>8.2} {:>7.2}% {:>10} {:>12.0}",
            p.name,
            p.cpu_s,
            p.percent(),
            p.ticks,
            p.ticks as f64 / p.wall_s
        );
    }
    let cost = |p: &Phase| p.percent() - phases[0].percent();
    println!(
        "{:<26} {:>8} {:>7.2}%   (target < 1% of a core; hung: {hung})",
        "hang detection, idle",
        "",
        cost(&phases[1])
    );
    if let Some(t) = phases.get(2) {
        println!(
            "{:<26} {:>8} {:>7.2}%   ({:.2} us of CPU per tick)",
            "ticking every kernel",
            "",
            cost(t),
            1e6 * (t.cpu_s - phases[0].cpu_s) / t.ticks.max(1) as f64
        );
    }
    let hb = spawn_heartbeat(system.clone(), cfg);
    per_message(&statuses, &actors).await;
    drop(hb);
}

/// The busy stamps alone (one handler start and end), then kernels handling messages
/// under the heartbeat monitor against bare ractor actors handling the same.
async fn per_message(statuses: &[Arc<KernelStatus>], actors: &[ActorRef<KernelMsg>]) {
    let n = 10_000_000u64;
    let s = &statuses[0];
    let t = Instant::now();
    for _ in 0..n {
        let now = grace::time::mono_ms();
        std::hint::black_box(s.begin_handling(now));
        s.end_handling(now);
    }
    let stamp_ns = t.elapsed().as_nanos() as f64 / n as f64;

    let k = actors.len().min(1000);
    let rounds = 2_000u64;
    let total = k as u64 * rounds;
    let before: u64 = statuses[..k].iter().map(|s| s.messages()).sum();
    let t = Instant::now();
    for _ in 0..rounds {
        for a in &actors[..k] {
            let _ = a.send_message(KernelMsg::Request(Request::new("x", Value::Null), None));
        }
    }
    while statuses[..k].iter().map(|s| s.messages()).sum::<u64>() < before + total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let kernel_ns = t.elapsed().as_nanos() as f64 / total as f64;

    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut bare = Vec::with_capacity(k);
    for _ in 0..k {
        bare.push(
            Actor::spawn(None, Bare, count.clone())
                .await
                .expect("bare")
                .0,
        );
    }
    let t = Instant::now();
    for _ in 0..rounds {
        for a in &bare {
            let _ = a.send_message(KernelMsg::Request(Request::new("x", Value::Null), None));
        }
    }
    while count.load(std::sync::atomic::Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let bare_ns = t.elapsed().as_nanos() as f64 / total as f64;
    for a in bare {
        a.stop(None);
    }
    println!();
    println!("per message ({k} actors, {total} messages, wall time per message):");
    println!("  busy stamps (start + end, with the clock read) {stamp_ns:>8.1} ns");
    println!("  kernel actor, monitor running                  {kernel_ns:>8.1} ns");
    println!("  bare ractor actor (baseline)                   {bare_ns:>8.1} ns");
}

fn main() {
    let kernels = arg("--kernels", 10_000);
    let seconds = arg("--seconds", 10);
    let ticking = arg("--ticking", 1) != 0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(kernels, seconds, ticking));
}
