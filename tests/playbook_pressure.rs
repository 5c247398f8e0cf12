//! Pressure and backlog end to end in a running tree, with real parts only: a child
//! process (this test binary run again) that spins a CPU or holds memory is watched by
//! `resource_spike` through its PID file; the dispatcher runs `shed_load`, which pauses
//! the non-critical pools, and takes the load back once the child is killed. A backlog
//! on a `worker_pool` goes through `latency_queue` and `scale_workers`, and the extra
//! workers leave again once the queue has drained.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::Config;
use grace::incident::Incident;
use grace::kernel::{Control, Request};
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};
use grace::trigger::TriggersConfig;
use serde_json::{json, Value};

const CHILD: &str = "GRACE_TEST_CHILD";
const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// The body of the child process the tests start (this binary run again with
/// `GRACE_TEST_CHILD` set): `spin` burns a CPU, `alloc:<MiB>` allocates and touches that
/// much memory; both run until killed. Without the variable it returns at once.
#[test]
fn child_process() {
    let Ok(what) = std::env::var(CHILD) else {
        return;
    };
    if what == "spin" {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    let mib: usize = what
        .strip_prefix("alloc:")
        .and_then(|m| m.parse().ok())
        .expect("GRACE_TEST_CHILD is spin or alloc:<MiB>");
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = i as u8 | 1;
    }
    std::hint::black_box(&v);
    loop {
        std::thread::sleep(S);
    }
}

/// A child process, killed and reaped when dropped.
struct Load(Child);

impl Load {
    /// Starts the child doing `what` and writes its PID to `pid_file`.
    fn start(what: &str, pid_file: &Path) -> Load {
        let exe = std::env::current_exe().expect("test binary");
        let child = Command::new(exe)
            .args([
                "--exact",
                "child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, what)
            .spawn()
            .expect("child starts");
        std::fs::write(pid_file, format!("{}\n", child.id())).expect("pid file");
        Load(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `shed_load` as shipped but with short bounds: hold until the pressure ends.
const SHED_LOAD: &str = r#"
name: shed_load
description: Shed load until the pressure ends (short bounds for tests).
triggers: [cpu_high]
slo: 60s
cooldown: 1s
steps:
  - name: shed
    action: shed_load
  - name: hold
    action: wait
    args: { duration: 30s, until_clear: true, clear_for: 1s }
    timeout: 40s
  - name: restore
    action: restore_load
"#;

/// A tree over a fresh state directory with two pools, `batch` and the critical
/// `orders`, the test's `shed_load` playbook and the triggers `enable` turns on.
async fn tree(
    extra: &str,
    enable: impl FnOnce(&mut TriggersConfig),
) -> (Tree, Arc<System>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir_all(&playbooks).expect("mkdir");
    std::fs::write(playbooks.join("shed_load.yaml"), SHED_LOAD).expect("playbook");
    let toml = format!(
        r#"
        [playbooks]
        dir = "{}"
        [[kernel]]
        name = "batch"
        kind = "worker_pool"
        heartbeat_interval = "100ms"
        heartbeat_timeout = "10s"
        options = {{ rate = 0.0 }}
        [[kernel]]
        name = "orders"
        kind = "worker_pool"
        critical = true
        heartbeat_interval = "100ms"
        heartbeat_timeout = "10s"
        options = {{ rate = 0.0 }}
        {extra}
        "#,
        playbooks.display()
    );
    let mut config: Config = toml::from_str(&toml).expect("config");
    config.triggers.enable_only(&[]);
    enable(&mut config.triggers);
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    (tree, system, dir)
}

async fn stats(system: &System, kernel: &str) -> Value {
    system
        .registry
        .control(kernel, Control::Stats, 2 * S)
        .await
        .unwrap_or(Value::Null)
}

/// Polls `kernel`'s stats until `cond` holds; the time it took, or None after `within`.
async fn until(
    system: &System,
    kernel: &str,
    within: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if cond(&stats(system, kernel).await) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(10 * MS).await;
    }
    None
}

fn incidents(system: &System, trigger: &str) -> Vec<Incident> {
    system
        .incidents
        .recent(100)
        .into_iter()
        .filter(|i| i.trigger == trigger)
        .collect()
}

fn shedding(v: &Value) -> bool {
    v["shedding"] == true
}

/// Starts `what` in a child, waits for `shed_load` to pause `batch` (never `orders`),
/// checks it stays paused while the child runs, kills the child and waits for `batch`
/// to take its load back. Returns the incident.
async fn shed_and_restore(system: &System, dir: &Path, what: &str, failure_mode: &str) -> Incident {
    assert!(
        until(system, "batch", 500 * MS, shedding).await.is_none(),
        "no pressure before the child runs"
    );
    let mut child = Load::start(what, &dir.join("load.pid"));
    let shed = until(system, "batch", 8 * S, shedding)
        .await
        .unwrap_or_else(|| {
            panic!(
                "{what}: batch was not shed; incidents: {:?}",
                system.incidents.recent(10)
            )
        });
    eprintln!("{what}: batch shed {shed:?} after the child started");
    assert!(
        stats(system, "orders").await["shedding"] == false,
        "a critical pool keeps its load"
    );

    // The child still runs: the load stays shed.
    tokio::time::sleep(1200 * MS).await;
    let spike = stats(system, "trigger.resource_spike").await;
    assert!(
        shedding(&stats(system, "batch").await),
        "still under pressure: {spike}"
    );

    child.kill();
    let restored = until(system, "batch", 5 * S, |v| v["shedding"] == false)
        .await
        .expect("batch takes its load back once the child is gone");
    eprintln!("{what}: load restored {restored:?} after the child was killed");

    // The playbook ends once the condition has cleared, and says so.
    let t = Instant::now();
    let inc = loop {
        let found = incidents(system, "resource_spike");
        let done = found
            .iter()
            .find(|i| i.failure_mode == failure_mode && i.resolved_at.is_some());
        if let Some(i) = done {
            break i.clone();
        }
        assert!(
            t.elapsed() < 5 * S,
            "no resolved {failure_mode} incident: {found:?}"
        );
        tokio::time::sleep(20 * MS).await;
    };
    assert_eq!(inc.component, "load");
    assert_eq!(inc.playbook.as_deref(), Some("shed_load"));
    let steps = serde_json::to_value(&inc.steps).expect("steps");
    let hold = steps
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "hold"))
        .unwrap_or_else(|| panic!("no hold step: {steps}"));
    assert_eq!(hold["output"]["cleared"], true, "{hold}");
    inc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_child_process_sheds_load_until_it_is_killed() {
    let (tree, system, dir) = tree("", |t| {
        let r = &mut t.resource_spike;
        r.enabled = true;
        // Readings over half a second: a spinning process gets far more than 3% of a
        // core in each even on a host whose two cores run a dozen busy processes.
        r.interval = 500 * MS;
        r.process = Some("load.pid".into());
        r.cpu_percent = 3.0;
        r.cpu_for = Some(S);
        r.memory_percent = 100.0;
        r.disk_percent = 100.0;
    })
    .await;
    let inc = shed_and_restore(&system, dir.path(), "spin", "cpu_pressure").await;
    assert!(
        inc.details["percent"].as_f64().is_some_and(|p| p > 3.0),
        "{inc:?}"
    );
    tree.shutdown(5 * S).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_process_holding_memory_sheds_load_until_it_is_killed() {
    let (tree, system, dir) = tree("", |t| {
        let r = &mut t.resource_spike;
        r.enabled = true;
        r.interval = 100 * MS;
        r.process = Some("load.pid".into());
        r.cpu_percent = 100.0;
        // The child touches 96 MiB; the test binary itself starts far below 48.
        r.memory_mib = Some(48);
        r.memory_for = Some(300 * MS);
        r.memory_playbook = "shed_load".into();
        r.disk_percent = 100.0;
    })
    .await;
    let inc = shed_and_restore(&system, dir.path(), "alloc:96", "memory_pressure").await;
    let mib = inc.details["mib"].as_f64().expect("MiB");
    assert!(mib > 48.0, "{inc:?}");
    assert!(inc.details["rss_bytes"]
        .as_u64()
        .is_some_and(|b| b >= 48 << 20));
    tree.shutdown(5 * S).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_adds_workers_up_to_the_pool_maximum_and_a_drained_queue_removes_them() {
    let extra = r#"
        [[kernel]]
        name = "jobs"
        kind = "worker_pool"
        heartbeat_interval = "100ms"
        heartbeat_timeout = "10s"
        options = { rate = 0.0, workers = 1, max_workers = 3, job_bytes = 65536, scale_down_after = "300ms" }
    "#;
    let (tree, system, _dir) = tree(extra, |t| {
        let q = &mut t.latency_queue;
        q.enabled = true;
        q.interval = 50 * MS;
        q.hold_for = 100 * MS;
        q.backlog_limit = 50;
        q.kernels = vec!["jobs".into()];
    })
    .await;
    let system = &*system;
    assert_eq!(stats(system, "jobs").await["workers"], 1);
    let r = system
        .registry
        .call("jobs", Request::new("enqueue", json!({ "count": 1500 })), S)
        .await
        .expect("enqueue");
    assert_eq!(r["accepted"], 1500, "{r}");

    // The playbook asks for 1 + 2 workers; the pool's maximum is 3.
    let scaled = until(system, "jobs", 8 * S, |v| v["workers"] == 3)
        .await
        .expect("scaled up");
    let backlog = stats(system, "jobs").await["backlog"]
        .as_u64()
        .expect("backlog");
    eprintln!("scaled to 3 workers {scaled:?} after the backlog, {backlog} jobs left");
    assert!(backlog > 0, "scaled while the queue was still long");

    let drained = until(system, "jobs", 60 * S, |v| v["backlog"] == 0)
        .await
        .expect("the queue drains");
    let down = until(system, "jobs", 5 * S, |v| v["workers"] == 1)
        .await
        .expect("the extra workers leave");
    eprintln!("drained {drained:?} later; back to 1 worker {down:?} after that");
    let s = stats(system, "jobs").await;
    assert_eq!(
        (s["scaled_down"].as_u64(), s["processed"].as_u64()),
        (Some(1), Some(1500))
    );

    let inc = incidents(system, "latency_queue");
    let inc = inc.first().expect("a latency_queue incident");
    assert_eq!(
        (inc.component.as_str(), inc.playbook.as_deref()),
        ("jobs", Some("scale_workers"))
    );
    tree.shutdown(5 * S).await;
}
