//! The `exec` kernel with real child processes: exit reasons, graceful stop of a group
//! that ignores SIGTERM, no orphan or zombie after a kill, and probes that withhold the
//! heartbeat.

mod kernel_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::kernel::exec::{ExecKernel, ExecOptions, Probe};
use grace::kernel::{Control, Isolation, KernelMsg, KernelSpec};
use kernel_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sh(name: &str, script: &str) -> KernelSpec {
    exec(name, ExecOptions::new("sh").args(["-c", script]))
}

fn exec(name: &str, opts: ExecOptions) -> KernelSpec {
    KernelSpec::new(name, ExecKernel::factory(opts)).isolation(Isolation::Process)
}

async fn pid_of(actor: &ractor::ActorRef<KernelMsg>) -> i32 {
    let stats = control(actor, Control::Stats).await.expect("stats");
    stats["pid"].as_i64().expect("pid") as i32
}

/// Members of the group that are not zombies.
fn alive(pgid: i32) -> Vec<(i32, i32, char)> {
    group_members(pgid)
        .into_iter()
        .filter(|m| m.2 != 'Z')
        .collect()
}

/// What this process leaves of the group: members still alive, and zombies it should
/// have reaped (its own children). An orphaned grandchild, once dead, is its init's to
/// reap; some inits do that only every second or two, so it is not waited for.
fn leftovers(pgid: i32) -> Vec<(i32, i32, char)> {
    let me = std::process::id() as i32;
    group_members(pgid)
        .into_iter()
        .filter(|&(_, ppid, state)| state != 'Z' || ppid == me)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_child_fails_the_kernel_with_its_exit_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let t0 = Instant::now();
    let (actor, status) = h
        .spawn(&sh("crash", "sleep 0.2; exit 3"))
        .await
        .expect("starts");
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Failed(actor.get_id(), "exited with status 3".into())
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "seen at once, not by polling"
    );
    assert_eq!(
        status.last_reason().as_deref(),
        Some("exited with status 3")
    );

    let (actor, _) = h.spawn(&sh("killed", "kill -9 $$")).await.expect("starts");
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Failed(actor.get_id(), "killed by signal 9 (SIGKILL)".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_exit_is_a_normal_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let (actor, _) = h.spawn(&sh("clean", "exit 0")).await.expect("starts");
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Terminated(actor.get_id(), Some("exited with status 0".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_ignores_sigterm_is_killed_with_its_group_after_stop_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let opts = ExecOptions::new("sh")
        .args(["-c", "trap '' TERM; sleep 1000"])
        .stop_timeout(Duration::from_millis(300));
    let (actor, _) = h.spawn(&exec("stubborn", opts)).await.expect("starts");
    let pgid = pid_of(&actor).await;
    eventually(Duration::from_secs(5), "sh and its sleep to run", || {
        alive(pgid).len() == 2
    })
    .await;

    let t0 = Instant::now();
    actor
        .stop_and_wait(None, Some(Duration::from_secs(10)))
        .await
        .expect("stops");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "SIGTERM was ignored"
    );
    assert!(t0.elapsed() < Duration::from_secs(3), "SIGKILL followed");
    eventually(
        Duration::from_secs(3),
        "no process or zombie of the group",
        || leftovers(pgid).is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_kernel_takes_its_double_forked_grandchild_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let spec = sh("forker", "(sleep 1000 &); exec sleep 1000");
    let (actor, _) = h.spawn(&spec).await.expect("starts");
    let pgid = pid_of(&actor).await;
    eventually(Duration::from_secs(5), "the orphaned grandchild", || {
        alive(pgid)
            .iter()
            .any(|&(pid, ppid, _)| pid != pgid && ppid != pgid)
    })
    .await;

    actor.kill();
    h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    eventually(Duration::from_secs(3), "the whole group to be gone", || {
        leftovers(pgid).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_crashes_the_rest_of_its_group_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let spec = sh("leader", "sleep 1000 & sleep 0.3; exit 4");
    let (actor, _) = h.spawn(&spec).await.expect("starts");
    let pgid = pid_of(&actor).await;
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Failed(actor.get_id(), "exited with status 4".into())
    );
    eventually(
        Duration::from_secs(3),
        "the background sleep to be gone",
        || leftovers(pgid).is_empty(),
    )
    .await;
}

/// A loopback HTTP server answering 200 or 500 as `healthy` says.
async fn health_server(healthy: Arc<AtomicBool>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let line = if healthy.load(Ordering::SeqCst) {
                "HTTP/1.0 200 OK\r\n\r\n"
            } else {
                "HTTP/1.0 500 Internal Server Error\r\n\r\n"
            };
            let _ = s.write_all(line.as_bytes()).await;
        }
    });
    format!("http://{addr}/health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_probe_withholds_the_heartbeat_until_it_passes_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let healthy = Arc::new(AtomicBool::new(true));
    let url = health_server(healthy.clone()).await;
    let opts = ExecOptions::new("sleep")
        .args(["1000"])
        .probe(Probe::Http(url), Duration::from_secs(2));
    let (actor, status) = h.spawn(&exec("probed", opts)).await.expect("starts");

    let tick = |actor: &ractor::ActorRef<KernelMsg>| {
        let before = status.messages();
        actor.send_message(KernelMsg::Tick).expect("tick");
        let status = status.clone();
        async move {
            eventually(Duration::from_secs(5), "the tick to be handled", || {
                status.messages() > before
            })
            .await
        }
    };

    tick(&actor).await;
    assert!(status.heartbeat_age_ms() < 150);

    healthy.store(false, Ordering::SeqCst);
    tick(&actor).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = control(&actor, Control::Health).await.expect("health");
    assert_eq!(health["status"], "unhealthy", "{health}");
    assert!(
        health["reason"].as_str().unwrap_or("").contains("500"),
        "{health}"
    );
    assert!(
        status.heartbeat_age_ms() >= 200,
        "neither the failed tick nor other messages beat"
    );

    healthy.store(true, Ordering::SeqCst);
    tick(&actor).await;
    assert!(
        status.heartbeat_age_ms() < 150,
        "a passing probe beats again"
    );
    actor.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_fails_the_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let spec = exec("missing", ExecOptions::new("/nonexistent/prog"));
    let err = h.spawn(&spec).await.map(|_| ()).expect_err("cannot start");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/prog") && msg.contains("option command"),
        "{msg}"
    );
}
