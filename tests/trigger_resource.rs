//! `resource_spike` and what Grace runs: by default CPU is that of serve's process tree,
//! so a program that is not serve's does not fire it; host-wide CPU is an explicit
//! `scope = "host"`; and CPU pressure that `shed_load` cannot act on (no running kernel
//! sheds load) is published as informational.

mod trigger_support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::Topic;
use grace::config::Config;
use grace::incident::{IncidentDraft, Severity};
use grace::kernel::{Kernel, KernelContext, KernelError, KernelSpec, Request};
use grace::trigger::builtin::{ProcessProbe, ProcessTarget};
use grace::trigger::{ResourceScope, TriggersConfig};
use serde_json::{json, Value};
use trigger_support::{is, only, Harness};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// A CPU spinner that is not a descendant of this process: started by a shell that
/// exits at once, so it is re-parented away. Killed on drop.
struct Stranger(i32);

impl Stranger {
    fn start() -> Stranger {
        let out = Command::new("sh")
            .args([
                "-c",
                "sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $!",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the spinner's pid");
        Stranger(pid)
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// resource_spike alone: CPU above 10% of the host's capacity fires at once; memory and
/// disk never.
fn cpu_only(scope: ResourceScope) -> TriggersConfig {
    let mut t = only();
    let r = &mut t.resource_spike;
    r.enabled = true;
    r.scope = scope;
    r.interval = 300 * MS;
    r.cpu_percent = 10.0;
    r.cpu_for = Some(Duration::ZERO);
    r.memory_percent = 100.0;
    r.disk_percent = 100.0;
    t
}

fn cpu_pressure(got: &[(grace::bus::Event, IncidentDraft)]) -> Vec<IncidentDraft> {
    got.iter()
        .filter(|(e, d)| {
            is(e, d, Topic::EventIncident, "resource_spike") && d.failure_mode == "cpu_pressure"
        })
        .map(|(_, d)| d.clone())
        .collect()
}

/// A kernel that can shed load, as the worker pool does (its stats say `shedding`).
struct Shedder;

#[async_trait]
impl Kernel for Shedder {
    async fn handle(&mut self, _r: Request, _c: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }
    async fn shed_load(&mut self, on: bool, _c: &KernelContext) -> Result<Value, KernelError> {
        Ok(json!({ "shedding": on }))
    }
    fn stats(&self) -> Value {
        json!({ "shedding": false })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_programs_cpu_is_not_serves_and_host_pressure_nothing_can_shed_is_informational() {
    let stranger = Stranger::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("stranger.pid");
    std::fs::write(&pid_file, stranger.0.to_string()).expect("pid file");
    let mut probe = ProcessProbe::new(ProcessTarget::PidFile(pid_file));
    probe.read().expect("the spinner runs");

    // Default scope: this process's tree, which the spinner is not part of.
    let mut h = Harness::new(Config::default()).await;
    h.start_triggers(&cpu_only(ResourceScope::Tree)).await;
    let got = h.collect(1500 * MS).await;
    assert!(cpu_pressure(&got).is_empty(), "{got:?}");
    let burned = probe.read().and_then(|p| p.cpu);
    assert!(
        burned.is_some_and(|c| c > 5.0),
        "the spinner did spin: {burned:?}"
    );

    // Host-wide, asked for: the same spinner is pressure, but no kernel can shed load.
    let mut h = Harness::new(Config::default()).await;
    h.start_triggers(&cpu_only(ResourceScope::Host)).await;
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "resource_spike") && d.failure_mode == "cpu_pressure"
        })
        .await
        .expect("host CPU above 10%");
    assert_eq!(d.component, "host");
    assert_eq!(d.severity, Severity::Low);
    assert_eq!(d.details["informational"], true, "{}", d.details);
    assert!(d.details["reason"]
        .as_str()
        .is_some_and(|r| r.contains("shed")));
    assert!(grace::trigger::is_informational(&d));

    // With a kernel that sheds load, the same pressure is a remediable incident.
    let mut h = Harness::new(Config::default()).await;
    h.start_kernel(KernelSpec::new("pool", Arc::new(|| Box::new(Shedder))))
        .await;
    h.start_triggers(&cpu_only(ResourceScope::Host)).await;
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "resource_spike") && d.failure_mode == "cpu_pressure"
        })
        .await
        .expect("host CPU above 10%");
    assert_eq!(
        (d.severity, d.playbook.as_deref()),
        (Severity::High, Some("shed_load"))
    );
    assert!(!grace::trigger::is_informational(&d), "{}", d.details);
    drop(stranger);
}

#[tokio::test]
async fn by_default_memory_is_the_resident_memory_of_serves_tree() {
    let mut h = Harness::new(Config::default()).await;
    let mut t = only();
    let r = &mut t.resource_spike;
    r.enabled = true;
    r.interval = 50 * MS;
    // This process holds more than 1 MiB.
    r.memory_mib = Some(1);
    r.memory_for = Some(Duration::ZERO);
    r.cpu_percent = 100.0;
    r.disk_percent = 100.0;
    h.start_triggers(&t).await;
    let (_, d) = h
        .wait_for(5 * S, |e, d| {
            is(e, d, Topic::EventIncident, "resource_spike") && d.failure_mode == "memory_pressure"
        })
        .await
        .expect("memory pressure of the tree");
    assert_eq!(d.component, "grace");
    assert_eq!(d.details["scope"], "tree");
    assert_eq!(d.details["root_pid"], std::process::id());
    assert!(d.details["processes"].as_u64().is_some_and(|n| n >= 1));
    let rss = d.details["rss_bytes"].as_u64().expect("rss");
    assert!(rss > 1 << 20 && d.details["mib"].as_f64().is_some_and(|m| m > 1.0));
    // Restarting serve does relieve its own tree: this stays a remediable incident.
    assert_eq!(d.playbook.as_deref(), Some("restart_service"));
    assert!(!grace::trigger::is_informational(&d));
}
