//! `sandbox_failure` in a running tree with real exec kernels: a SIGKILL of a user's
//! process that is not marked `sandbox = true` is repaired by its supervisor and opens
//! no incident; the same crash of a kernel marked `sandbox = true` is a sandbox failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use grace::config::Config;
use grace::kernel::{Control, KernelStatus};
use grace::state::StatePaths;
use grace::tree::{Extensions, System, Tree};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

async fn until(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if cond() {
            return Some(t.elapsed());
        }
        tokio::time::sleep(5 * MS).await;
    }
    None
}

async fn pid(system: &System, name: &str) -> i32 {
    let stats = system.registry.control(name, Control::Stats, S).await;
    stats.expect("stats")["pid"].as_i64().expect("a process") as i32
}

fn kill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
}

fn sandbox_incidents(system: &System, component: &str) -> usize {
    system
        .incidents
        .recent(50)
        .iter()
        .filter(|i| i.trigger == "sandbox_failure" && i.component == component)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_kernel_marked_sandbox_is_a_sandbox_failure_when_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
        [triggers.sandbox_failure]
        interval = "100ms"
        [[kernel]]
        name = "web"
        kind = "exec"
        heartbeat_interval = "100ms"
        options = { command = "sleep", args = ["60"] }
        [[kernel]]
        name = "untrusted"
        kind = "exec"
        sandbox = true
        heartbeat_interval = "100ms"
        options = { command = "sleep", args = ["60"] }
    "#;
    let mut config: Config = toml::from_str(toml).expect("config");
    config.triggers.enable_only(&["sandbox_failure"]);
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    let tree = Tree::start(&system, Extensions::default())
        .await
        .expect("tree starts");
    let status = |n: &str| -> Arc<KernelStatus> {
        system.registry.get(n).expect("registered").status.clone()
    };
    let (web, untrusted) = (status("web"), status("untrusted"));
    assert!(!web.sandbox && untrusted.sandbox);
    until(5 * S, || web.state().is_up() && untrusted.state().is_up())
        .await
        .expect("both run");

    let first = pid(&system, "web").await;
    kill(first);
    until(5 * S, || web.restarts() >= 1 && web.state().is_up())
        .await
        .expect("the supervisor restarts web");
    assert_ne!(pid(&system, "web").await, first, "a new process");
    // Several checks of the trigger later: nothing about web.
    tokio::time::sleep(600 * MS).await;
    assert_eq!(sandbox_incidents(&system, "web"), 0);
    assert!(web.state().is_up(), "web keeps running: {:?}", web.state());

    kill(pid(&system, "untrusted").await);
    until(5 * S, || sandbox_incidents(&system, "untrusted") == 1)
        .await
        .unwrap_or_else(|| panic!("{:?}", system.incidents.recent(10)));
    assert_eq!(sandbox_incidents(&system, "web"), 0);
    tree.shutdown(5 * S).await;
}
