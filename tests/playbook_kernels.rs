//! Kernel actions on a real supervised tree: stop, verify health, restart when
//! unhealthy, count running kernels, and the control hooks (scale, shed and restore
//! load, clear caches) on a kernel that implements them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::kernel::{Control, Health, Kernel, KernelContext, KernelError, KernelSpec, Request};
use grace::playbook::action::Escalation;
use grace::playbook::{ActionContext, ActionError, ActionRegistry, Args};
use grace::state::StatePaths;
use grace::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
use grace::tree::System;
use serde_json::{json, Value};

/// A worker pool stand-in with every hook: `workers`, a cache, load shedding, and a
/// health the test can spoil with the `sicken` request.
struct Pool {
    workers: usize,
    cache: usize,
    shedding: bool,
    sick: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            workers: 4,
            cache: 100,
            shedding: false,
            sick: false,
        }
    }
}

#[async_trait]
impl Kernel for Pool {
    async fn handle(&mut self, req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        if req.op == "sicken" {
            self.sick = true;
        }
        Ok(self.stats())
    }
    async fn health(&mut self, _ctx: &KernelContext) -> Health {
        if self.sick {
            Health::Unhealthy {
                reason: "sickened".into(),
            }
        } else {
            Health::Healthy
        }
    }
    async fn clear_caches(&mut self, _ctx: &KernelContext) -> Result<Value, KernelError> {
        let freed = std::mem::take(&mut self.cache);
        Ok(json!({ "freed": freed }))
    }
    async fn shed_load(&mut self, on: bool, _ctx: &KernelContext) -> Result<Value, KernelError> {
        self.shedding = on;
        Ok(json!({ "shedding": on }))
    }
    async fn scale(&mut self, size: usize, _ctx: &KernelContext) -> Result<Value, KernelError> {
        self.workers = size;
        Ok(json!({ "workers": size }))
    }
    fn stats(&self) -> Value {
        json!({ "workers": self.workers, "cache": self.cache, "shedding": self.shedding })
    }
}

/// A kernel without hooks.
#[derive(Default)]
struct Plain;

#[async_trait]
impl Kernel for Plain {
    async fn handle(&mut self, _req: Request, _ctx: &KernelContext) -> Result<Value, KernelError> {
        Ok(Value::Null)
    }
}

fn spec<K: Kernel + Default>(name: &str) -> KernelSpec {
    KernelSpec::new(name, Arc::new(|| Box::new(K::default())))
}

struct T {
    system: Arc<System>,
    _sup: SupervisorHandle,
    _dir: tempfile::TempDir,
}

async fn tree() -> T {
    let dir = tempfile::tempdir().expect("tempdir");
    let system =
        System::open(Arc::new(Config::default()), StatePaths::new(dir.path())).expect("system");
    let sup = SupervisorSpec::new("kernels", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .child(ChildSpec::kernel(spec::<Pool>("pool")))
        .child(ChildSpec::kernel(spec::<Pool>("vital").critical()))
        .child(ChildSpec::kernel(spec::<Plain>("plain")));
    let sup = SupervisorHandle::start(sup, system.clone())
        .await
        .expect("tree");
    T {
        system,
        _sup: sup,
        _dir: dir,
    }
}

impl T {
    async fn run(&self, action: &str, args: Value) -> Result<Value, ActionError> {
        let actions = ActionRegistry::builtin();
        let map = match args {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let incident = Incident {
            incident_id: "inc_20250101_000000_000007".into(),
            detected_at: grace::time::rfc3339(grace::time::now()),
            resolved_at: None,
            status: IncidentStatus::Mitigating,
            failure_mode: "test".into(),
            severity: Severity::Low,
            component: "pool".into(),
            trigger: "test".into(),
            playbook: None,
            steps: Vec::new(),
            mttr_seconds: None,
            success: None,
            occurrences: 1,
            summary: "test".into(),
            details: Value::Null,
            closed_reason: None,
        };
        let ctx = ActionContext::new(
            self.system.clone(),
            Arc::new(incident),
            "p",
            "s",
            Duration::from_secs(5),
            Arc::new(Escalation::default()),
        );
        actions
            .get(action)
            .expect("built-in")
            .run(&ctx, &Args::new(action, map))
            .await
    }

    async fn stats(&self, name: &str) -> Value {
        self.system
            .registry
            .control(name, Control::Stats, Duration::from_secs(1))
            .await
            .expect("stats")
    }
}

#[tokio::test]
async fn scale_workers_adds_workers_up_to_the_maximum() {
    let t = tree().await;
    let r = t
        .run("scale_workers", json!({ "add": 2 }))
        .await
        .expect("scaled");
    assert_eq!((r["from"].as_u64(), r["to"].as_u64()), (Some(4), Some(6)));
    assert_eq!(t.stats("pool").await["workers"], 6);
    t.run("scale_workers", json!({ "add": 5, "max": 8 }))
        .await
        .expect("capped");
    assert_eq!(t.stats("pool").await["workers"], 8);
    let e = t
        .run("scale_workers", json!({ "add": 1, "max": 8 }))
        .await
        .expect_err("at max");
    assert!(e.to_string().contains("maximum"), "{e}");
    t.run("scale_workers", json!({ "size": 2 }))
        .await
        .expect("absolute");
    assert_eq!(t.stats("pool").await["workers"], 2);
}

#[tokio::test]
async fn shed_load_spares_critical_kernels_and_restore_load_undoes_it() {
    let t = tree().await;
    let r = t.run("shed_load", json!({})).await.expect("shed");
    let acted: Vec<&String> = r["kernels"].as_object().expect("map").keys().collect();
    assert_eq!(
        acted,
        ["pool"],
        "not the critical one, not the one without the hook"
    );
    assert_eq!(t.stats("pool").await["shedding"], true);
    assert_eq!(t.stats("vital").await["shedding"], false);
    t.run("restore_load", json!({})).await.expect("restored");
    assert_eq!(t.stats("pool").await["shedding"], false);
    t.run("shed_load", json!({ "kernel": "vital" }))
        .await
        .expect("named");
    assert_eq!(t.stats("vital").await["shedding"], true);
    let e = t
        .run("shed_load", json!({ "kernel": "plain" }))
        .await
        .expect_err("no hook");
    assert!(e.to_string().contains("does not support"), "{e}");
}

#[tokio::test]
async fn clear_caches_clears_every_kernel_that_can() {
    let t = tree().await;
    let r = t.run("clear_caches", json!({})).await.expect("cleared");
    assert_eq!(r["kernels"]["pool"]["freed"], 100);
    assert_eq!(r["kernels"]["vital"]["freed"], 100);
    assert!(r["kernels"].get("plain").is_none());
    assert_eq!(t.stats("pool").await["cache"], 0);
}

#[tokio::test]
async fn stop_verify_and_count_kernels() {
    let t = tree().await;
    t.run("verify_health", json!({ "kernel": "plain" }))
        .await
        .expect("healthy");
    let r = t
        .run("check_kernels", json!({ "min": 3 }))
        .await
        .expect("all three");
    assert_eq!(r["running"], 3);
    t.run("stop_kernel", json!({ "kernel": "plain" }))
        .await
        .expect("stopped");
    let e = t
        .run("verify_health", json!({ "kernel": "plain" }))
        .await
        .expect_err("down");
    assert!(e.to_string().contains("not running"), "{e}");
    let e = t
        .run("check_kernels", json!({ "fraction": 1.0 }))
        .await
        .expect_err("2 of 3");
    assert!(e.to_string().contains("plain"), "{e}");
    t.run(
        "check_kernels",
        json!({ "critical": true, "fraction": 1.0 }),
    )
    .await
    .expect("every critical kernel runs");
    t.run("restart_kernel", json!({ "kernel": "plain" }))
        .await
        .expect("back");
    t.run("verify_health", json!({ "kernel": "plain" }))
        .await
        .expect("healthy again");
}

#[tokio::test]
async fn restart_when_unhealthy_leaves_a_healthy_kernel_alone() {
    let t = tree().await;
    let pool = t.system.registry.get("pool").expect("pool").status.clone();
    let r = t
        .run("restart_kernel", json!({ "when": "unhealthy" }))
        .await
        .expect("skipped");
    assert_eq!(r["skipped"], true, "{r}");
    assert_eq!(pool.restarts(), 0);
    t.system
        .registry
        .call(
            "pool",
            Request::new("sicken", Value::Null),
            Duration::from_secs(1),
        )
        .await
        .expect("sicken");
    let e = t
        .run("verify_health", json!({}))
        .await
        .expect_err("unhealthy");
    assert!(e.to_string().contains("sickened"), "{e}");
    let r = t
        .run("restart_kernel", json!({ "when": "unhealthy" }))
        .await
        .expect("restarted");
    assert_eq!(r["restarted"], true, "{r}");
    assert_eq!(pool.restarts(), 1);
    t.run("verify_health", json!({}))
        .await
        .expect("a fresh incarnation is healthy");
}

#[tokio::test]
async fn the_whole_tree_form_acts_only_where_needed() {
    let t = tree().await;
    let statuses: Vec<_> = ["pool", "vital", "plain"]
        .iter()
        .map(|n| t.system.registry.get(n).expect("kernel").status.clone())
        .collect();
    t.run("verify_health", json!({ "kernel": "*" }))
        .await
        .expect("all healthy");
    let r = t
        .run(
            "restart_kernel",
            json!({ "kernel": "*", "when": "unhealthy" }),
        )
        .await
        .expect("nothing to do");
    assert_eq!(r["skipped"], true, "{r}");
    t.system
        .registry
        .call(
            "vital",
            Request::new("sicken", Value::Null),
            Duration::from_secs(1),
        )
        .await
        .expect("sicken");
    let e = t
        .run("verify_health", json!({ "kernel": "system" }))
        .await
        .expect_err("vital");
    assert!(e.to_string().contains("vital"), "{e}");
    let r = t
        .run(
            "restart_kernel",
            json!({ "kernel": "system", "when": "unhealthy" }),
        )
        .await
        .expect("restarted the sick one");
    assert_eq!(r["done"], json!(["vital"]), "{r}");
    let restarts: Vec<u64> = statuses.iter().map(|s| s.restarts()).collect();
    assert_eq!(restarts, [0, 1, 0]);
    let e = t
        .run("restart_kernel", json!({ "kernel": "*" }))
        .await
        .expect_err("never restart them all");
    assert!(!e.retryable());
}
