//! Shared bodies of the containment tests: exec kernels whose processes ignore SIGTERM,
//! double-fork and call `setsid`, stopped, killed or crashing; afterwards none of their
//! processes may remain. Each test binary chooses the mechanism (`GRACE_CONTAINMENT`)
//! before anything runs, so the same bodies run under cgroup and subreaper.
#![allow(dead_code)]

use std::sync::Once;
use std::time::{Duration, Instant};

use grace::kernel::exec::{ExecKernel, ExecOptions};
use grace::kernel::{Isolation, KernelMsg, KernelSpec};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::kernel_support::{eventually, system, Harness, Seen};

static MODE: Once = Once::new();

/// Runs `body` on a fresh runtime, after choosing the containment mechanism `mode`
/// for this whole test process.
pub fn run<F: std::future::Future<Output = ()>>(mode: &'static str, body: F) {
    MODE.call_once(|| {
        // Set once, before any test thread reads the environment or spawns a kernel.
        std::env::set_var(grace::kernel::exec::contain::MODE_ENV, mode);
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body);
    // This process's base cgroup, once no test uses it (a later kernel recreates it).
    grace::kernel::exec::cgroup::remove_base();
}

/// Every process whose argv is `sleep <marker>` (zombies included when `zombies`):
/// (pid, ppid, state).
pub fn marked(marker: &str, zombies: bool) -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let argv = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = argv.split(|b| *b == 0).collect();
        let is = args.len() >= 2 && args[0].ends_with(b"sleep") && args[1] == marker.as_bytes();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let state = f.first().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if is && (zombies || state != 'Z') {
            out.push((pid, ppid, state));
        }
    }
    out
}

/// Kills every `sleep <marker>` process when dropped, so a failing test leaves none.
pub struct Markers(pub Vec<String>);

impl Drop for Markers {
    fn drop(&mut self) {
        for m in &self.0 {
            for (pid, _, _) in marked(m, false) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// A unique marker per test process and case: `sleep` durations no one else uses.
pub fn markers(case: u32, n: u32) -> Markers {
    let base = 100_000 + (std::process::id() % 8_000) * 100 + case * 10;
    Markers((0..n).map(|i| (base + i).to_string()).collect())
}

fn spec(name: &str, script: &str, stop: Duration) -> KernelSpec {
    let opts = ExecOptions::new("sh")
        .args(["-c", script])
        .stop_timeout(stop);
    KernelSpec::new(name, ExecKernel::factory(opts)).isolation(Isolation::Process)
}

/// A kernel that ignores SIGTERM, whose leader starts a double-forked sleeper that
/// ignores SIGTERM, and a grandchild that calls setsid; markers 0, 1, 2.
fn stubborn_script(m: &Markers) -> String {
    format!(
        "trap '' TERM; \
         sh -c \"trap '' TERM; sleep {a} &\"; \
         sh -c \"trap '' TERM; setsid sleep {b} &\"; \
         exec sleep {c}",
        a = m.0[0],
        b = m.0[1],
        c = m.0[2]
    )
}

async fn all_running(m: &Markers) {
    eventually(
        Duration::from_secs(5),
        "every marked sleeper to run",
        || m.0.iter().all(|k| !marked(k, false).is_empty()),
    )
    .await;
}

async fn none_left(m: &Markers, within: Duration) {
    let me = std::process::id();
    eventually(within, "no marked process, and no zombie of ours", || {
        m.0.iter().all(|k| {
            marked(k, true)
                .iter()
                .all(|&(_, ppid, st)| st == 'Z' && ppid != me)
        })
    })
    .await;
}

/// Stopping the kernel ends all three (after its stop timeout), within the bound.
pub async fn a_stopped_kernel_leaves_nothing(case: u32) {
    let m = markers(case, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let stop = Duration::from_millis(300);
    let (actor, _) = h
        .spawn(&spec("stubborn", &stubborn_script(&m), stop))
        .await
        .expect("starts");
    all_running(&m).await;
    let t0 = Instant::now();
    actor
        .stop_and_wait(None, Some(Duration::from_secs(10)))
        .await
        .expect("stops");
    let took = t0.elapsed();
    assert!(took >= stop, "SIGTERM was ignored, so the stop waited");
    assert!(took < Duration::from_secs(3), "SIGKILL followed: {took:?}");
    none_left(&m, Duration::from_secs(2)).await;
}

/// Killing the kernel's actor (no graceful stop) ends all three too.
pub async fn a_killed_kernel_leaves_nothing(case: u32) {
    let m = markers(case, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let (actor, _) = h
        .spawn(&spec(
            "killed",
            &stubborn_script(&m),
            Duration::from_secs(5),
        ))
        .await
        .expect("starts");
    all_running(&m).await;
    actor.kill();
    h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    none_left(&m, Duration::from_secs(3)).await;
}

/// When the leader crashes, what it started (double-forked, setsid) goes with it.
pub async fn a_crashed_leader_leaves_nothing(case: u32) {
    let m = markers(case, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let go = dir.path().join("go");
    let script = format!(
        "sh -c \"trap '' TERM; sleep {a} &\"; sh -c \"setsid sleep {b} &\"; \
         while [ ! -e {go} ]; do sleep 0.02; done; exit 4",
        a = m.0[0],
        b = m.0[1],
        go = go.display()
    );
    let (actor, _) = h
        .spawn(&spec("crasher", &script, Duration::from_secs(5)))
        .await
        .expect("starts");
    all_running(&m).await;
    std::fs::write(&go, b"").expect("go");
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Failed(actor.get_id(), "exited with status 4".into())
    );
    none_left(&m, Duration::from_secs(3)).await;
}

/// A process that escaped (double fork and setsid, environment cleared) after a tick
/// saw it is still ended with its kernel.
pub async fn a_tracked_escapee_is_ended(case: u32) {
    let m = markers(case, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    // The middle sh lives until told (file `go`), so the tick sees the sleeper in the
    // tree before it is orphaned.
    let go = dir.path().join("go");
    let script = format!(
        "sh -c \"env -i setsid sleep {a} & while [ ! -e {go} ]; do sleep 0.02; done\" & \
         exec sleep {b}",
        a = m.0[0],
        b = m.0[1],
        go = go.display()
    );
    let (actor, _) = h
        .spawn(&spec("escapee", &script, Duration::from_millis(300)))
        .await
        .expect("starts");
    all_running(&m).await;
    actor.send_message(KernelMsg::Tick).expect("tick");
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&go, b"").expect("go");
    eventually(Duration::from_secs(3), "the sleeper to be orphaned", || {
        marked(&m.0[0], false)
            .iter()
            .all(|&(_, ppid, _)| ppid == 1 || ppid == std::process::id())
    })
    .await;
    actor
        .stop_and_wait(None, Some(Duration::from_secs(10)))
        .await
        .expect("stops");
    none_left(&m, Duration::from_secs(2)).await;
}
