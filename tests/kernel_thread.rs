//! Thread isolation: the kernel runs on its own OS thread and runtime, its exits reach
//! its parent like a task kernel's, and a graceful stop ends its thread.

mod kernel_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use grace::kernel::{Fault, Isolation, KernelMsg};
use kernel_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_kernel_runs_on_its_own_named_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let probe = Arc::new(Probe::default());
    let spec = test_spec("th-where", &probe).isolation(Isolation::Thread);
    let (actor, status) = h.spawn(&spec).await.expect("starts");
    assert!(status.state().is_up());
    let here = format!("{:?}", std::thread::current().id());
    let there = call(&actor, "where", json!(null)).await.expect("answer");
    assert_eq!(there["thread"], "kernel-th-where");
    assert_ne!(there["id"], here.as_str());
    assert!(has_thread("kernel-th-where"));
    assert!(grace::kernel::thread::kernel_threads().live >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_of_a_thread_kernel_reach_the_parent_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let probe = Arc::new(Probe::default());
    let spec = test_spec("th-fail", &probe).isolation(Isolation::Thread);

    let (actor, _) = h.spawn(&spec).await.expect("starts");
    actor
        .send_message(KernelMsg::Fault(Fault::Error("disk on fire".into())))
        .expect("send");
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(exit, Seen::Failed(actor.get_id(), "disk on fire".into()));

    let (actor, _) = h.spawn(&spec).await.expect("starts again");
    actor
        .send_message(KernelMsg::Fault(Fault::Panic))
        .expect("send");
    match h.exit_of(actor.get_id(), Duration::from_secs(5)).await {
        Seen::Failed(_, reason) => assert!(reason.contains("injected panic"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_runs_the_kernels_stop_and_ends_its_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let probe = Arc::new(Probe::default());
    let spec = test_spec("th-stop", &probe).isolation(Isolation::Thread);
    let (actor, _) = h.spawn(&spec).await.expect("starts");
    assert!(has_thread("kernel-th-stop"));
    actor
        .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
        .await
        .expect("stops");
    assert!(probe.stopped.load(Ordering::SeqCst), "Kernel::stop ran");
    // The thread reports its end just before it returns.
    eventually(Duration::from_secs(1), "the kernel's thread to end", || {
        !has_thread("kernel-th-stop")
    })
    .await;
    let exit = h.exit_of(actor.get_id(), Duration::from_secs(5)).await;
    assert_eq!(
        exit,
        Seen::Terminated(actor.get_id(), Some("shutdown".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_kernel_that_fails_to_start_reports_why() {
    use async_trait::async_trait;
    use grace::kernel::{Kernel, KernelContext, KernelError, KernelSpec, Request};
    struct NoStart;
    #[async_trait]
    impl Kernel for NoStart {
        async fn start(&mut self, _: &KernelContext) -> Result<(), KernelError> {
            Err(KernelError::failed("config file missing"))
        }
        async fn handle(
            &mut self,
            _: Request,
            _: &KernelContext,
        ) -> Result<serde_json::Value, KernelError> {
            Ok(serde_json::Value::Null)
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let spec = KernelSpec::new(
        "th-nostart",
        Arc::new(|| Box::new(NoStart) as Box<dyn Kernel>),
    )
    .isolation(Isolation::Thread);
    let err = h.spawn(&spec).await.map(|_| ()).expect_err("start fails");
    assert!(err.to_string().contains("config file missing"), "{err}");
    eventually(Duration::from_secs(5), "the thread to end", || {
        !has_thread("kernel-th-nostart")
    })
    .await;
}
