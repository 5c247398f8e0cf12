//! CPU cost of heartbeats: an idle tree of kernels beating every second, measured in the
//! same run without any ticks (baseline), with the same ticks sent by a bare loop (the
//! cost of the kernel actors' message path alone), and with the heartbeat ticker and
//! monitor.
//!
//! Run with: `cargo bench --bench heartbeat` (options: `--kernels N`, `--seconds S`).
//! Target: under 5% of one core for 10,000 kernels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use grace::config::{Config, HeartbeatConfig};
use grace::kernel::{
    spawn_kernel, Kernel, KernelContext, KernelError, KernelSpec, KernelState, KernelStatus,
    Request,
};
use grace::state::StatePaths;
use grace::supervisor::SupervisorMsg;
use grace::tree::{spawn_heartbeat, System};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;

// The allocator of the `grace` binary (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A kernel that does nothing but answer its ticks.
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

async fn run(kernels: u64, seconds: u64) {
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
    let base = measure("no ticks (baseline)", seconds, &statuses).await;

    // The same ticks from a bare loop: a tenth of the kernels every 100 ms.
    let bare = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        let chunk = actors.len().div_ceil(10).max(1);
        for batch in actors.chunks(chunk).cycle() {
            every.tick().await;
            for a in batch {
                let _ = a.send_message(grace::kernel::KernelMsg::Tick);
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let raw = measure("bare loop, same ticks", seconds, &statuses).await;
    bare.abort();

    let cfg = HeartbeatConfig {
        interval: Duration::from_secs(1),
        ..HeartbeatConfig::default()
    };
    let hb = spawn_heartbeat(system.clone(), cfg);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = measure("ticker + monitor", seconds, &statuses).await;
    drop(hb);

    let hung = statuses.iter().filter(|s| s.is_hung()).count();
    println!();
    println!(
        "{:<24} {:>8} {:>8} {:>10} {:>12}",
        "phase", "cpu_s", "% core", "ticks", "ticks/s"
    );
    for p in [&base, &raw, &with] {
        println!(
            "{:<24} {:>8.2} {:>7.2}% {:>10} {:>12.0}",
            p.name,
            p.cpu_s,
            p.percent(),
            p.ticks,
            p.ticks as f64 / p.wall_s
        );
    }
    let cost = with.percent() - base.percent();
    println!(
        "{:<24} {:>8} {:>7.2}%   (target < 5%; {:.2} us of CPU per tick; hung: {hung})",
        "heartbeat cost",
        "",
        cost,
        1e6 * (with.cpu_s - base.cpu_s) / with.ticks.max(1) as f64
    );
    println!(
        "{:<24} {:>8} {:>7.2}%   (ticker queue and monitor scan, over the bare loop)",
        "  of which scheduling",
        "",
        with.percent() - raw.percent()
    );
}

fn main() {
    let kernels = arg("--kernels", 10_000);
    let seconds = arg("--seconds", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(kernels, seconds));
}
