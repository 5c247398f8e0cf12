//! The demo kernels of the default configuration, built through their kinds: the worker
//! pool's queue, scaling and load shedding; the key-value store's snapshot across a
//! restart; the model's integrity check.

mod kernel_support;

use std::time::Duration;

use grace::kernel::{build_kind, Control, KernelMsg, KernelSpec};
use kernel_support::*;
use serde_json::{json, Value};

fn spec(kind: &str, name: &str, options: &str) -> KernelSpec {
    let table: toml::Table = toml::from_str(options).expect("options");
    let (factory, _) = build_kind(kind, name, &table).expect("builds");
    KernelSpec::new(name, factory)
}

async fn stats(actor: &ractor::ActorRef<KernelMsg>) -> Value {
    control(actor, Control::Stats).await.expect("stats")
}

async fn until_stats(actor: &ractor::ActorRef<KernelMsg>, what: &str, f: impl Fn(&Value) -> bool) {
    let t0 = std::time::Instant::now();
    loop {
        let s = stats(actor).await;
        if f(&s) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_drains_its_queue_scales_and_sheds_low_priority_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let s = spec(
        "worker_pool",
        "pool",
        "workers = 2\nrate = 0.0\njob_bytes = 4096",
    );
    let (pool, _) = h.spawn(&s).await.expect("starts");

    let r = call(&pool, "enqueue", json!({"count": 100}))
        .await
        .expect("enqueue");
    assert_eq!(r["accepted"], 100);
    until_stats(&pool, "100 jobs processed", |s| {
        s["processed"] == 100 && s["backlog"] == 0
    })
    .await;

    // No workers: the backlog builds up; scaling up drains it.
    let r = control(&pool, Control::Scale(0)).await.expect("scale");
    assert_eq!(r["previous"], 2);
    call(&pool, "enqueue", json!({"count": 50}))
        .await
        .expect("enqueue");
    assert_eq!(stats(&pool).await["backlog"], 50);
    control(&pool, Control::Scale(8)).await.expect("scale");
    assert_eq!(stats(&pool).await["workers"], 8);
    until_stats(&pool, "the backlog to drain", |s| {
        s["backlog"] == 0 && s["processed"] == 150
    })
    .await;
    assert!(
        control(&pool, Control::Scale(10_000)).await.is_err(),
        "bounded by max_workers"
    );

    // Shedding drops queued and new low-priority jobs, counting them; high ones run.
    control(&pool, Control::Scale(0)).await.expect("scale");
    call(&pool, "enqueue", json!({"count": 5, "priority": "low"}))
        .await
        .expect("enqueue");
    call(&pool, "enqueue", json!({"count": 3}))
        .await
        .expect("enqueue");
    let r = control(&pool, Control::ShedLoad(true)).await.expect("shed");
    assert_eq!(r["dropped_from_queue"], 5);
    let r = call(&pool, "enqueue", json!({"count": 4, "priority": "low"}))
        .await
        .expect("enqueue");
    assert_eq!(
        (r["accepted"].clone(), r["shed"].clone()),
        (json!(0), json!(4))
    );
    let s = stats(&pool).await;
    assert_eq!(
        (s["shed"].clone(), s["backlog"].clone()),
        (json!(9), json!(3))
    );
    control(&pool, Control::ShedLoad(false))
        .await
        .expect("restore");
    control(&pool, Control::Scale(1)).await.expect("scale");
    until_stats(&pool, "the high jobs to run", |s| s["processed"] == 153).await;

    let e = call(&pool, "enqueue", json!({"priority": "urgent"})).await;
    assert!(e.expect_err("bad priority").contains("high or low"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_generates_its_own_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let s = spec("worker_pool", "busy", "rate = 200.0\njob_bytes = 1024");
    let (pool, _) = h.spawn(&s).await.expect("starts");
    until_stats(&pool, "generated jobs to be processed", |s| {
        s["processed"].as_u64().unwrap_or(0) >= 20
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_store_answers_and_its_snapshot_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let s = spec("kv_store", "kv", "snapshot_interval = \"0s\"");
    let (kv, _) = h.spawn(&s).await.expect("starts");

    call(&kv, "put", json!({"key": "a", "value": {"n": 1}}))
        .await
        .expect("put");
    call(&kv, "put", json!({"key": "b", "value": "two"}))
        .await
        .expect("put");
    let r = call(&kv, "get", json!({"key": "a"})).await.expect("get");
    assert_eq!(
        (r["value"].clone(), r["cached"].clone()),
        (json!({"n": 1}), json!(false))
    );
    let r = call(&kv, "get", json!({"key": "a"})).await.expect("get");
    assert_eq!(r["cached"], true);
    let r = control(&kv, Control::ClearCaches).await.expect("clear");
    assert_eq!(r["freed_entries"], 1);
    let r = call(&kv, "delete", json!({"key": "b"}))
        .await
        .expect("delete");
    assert_eq!(r["deleted"], true);
    assert!(call(&kv, "get", json!({}))
        .await
        .expect_err("no key")
        .contains("key"));

    // The tick writes the snapshot; a kill (no graceful stop) keeps what it wrote.
    let before = dir.path().join("kv/kv.json");
    kv.send_message(KernelMsg::Tick).expect("tick");
    eventually(Duration::from_secs(5), "the snapshot file", || {
        before.exists()
    })
    .await;
    kv.kill();
    h.exit_of(kv.get_id(), Duration::from_secs(5)).await;

    let (kv, _) = h.spawn(&s).await.expect("restarts");
    let r = call(&kv, "get", json!({"key": "a"})).await.expect("get");
    assert_eq!(r["value"], json!({"n": 1}));
    assert_eq!(
        call(&kv, "get", json!({"key": "b"})).await.expect("get")["found"],
        false
    );

    // A graceful stop writes what changed since.
    call(&kv, "put", json!({"key": "c", "value": 3}))
        .await
        .expect("put");
    kv.stop_and_wait(None, Some(Duration::from_secs(5)))
        .await
        .expect("stops");
    let (kv, _) = h.spawn(&s).await.expect("restarts");
    assert_eq!(
        call(&kv, "get", json!({"key": "c"})).await.expect("get")["value"],
        3
    );
    kv.stop_and_wait(None, Some(Duration::from_secs(5)))
        .await
        .expect("stops");

    // A corrupted snapshot stops the start, saying what to do.
    let text = std::fs::read_to_string(&before).expect("snapshot");
    std::fs::write(&before, text.replace("\"n\":1", "\"n\":7")).expect("corrupt");
    let err = h.spawn(&s).await.map(|_| ()).expect_err("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_predicts_and_fails_when_its_weights_are_corrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = Harness::new(system(dir.path()), true).await;
    let s = spec("model", "clf", "inputs = 8\noutputs = 3");
    let (model, _) = h.spawn(&s).await.expect("starts");
    let weights = dir.path().join("models/clf.pt");
    assert_eq!(
        std::fs::metadata(&weights).expect("weights").len(),
        (8 * 3 + 3) * 4
    );
    assert!(dir.path().join("models/clf.pt.manifest.json").exists());

    let r = call(
        &model,
        "predict",
        json!({"input": [1, 0, 0, 0, 0, 0, 0, 0.5]}),
    )
    .await
    .expect("predict");
    let out: Vec<f64> = r["output"]
        .as_array()
        .expect("output")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(out.len(), 3);
    assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{out:?}");
    let again = call(
        &model,
        "predict",
        json!({"input": [1, 0, 0, 0, 0, 0, 0, 0.5]}),
    )
    .await;
    assert_eq!(again.expect("predict"), r, "deterministic");
    assert!(call(&model, "predict", json!({"input": [1]}))
        .await
        .is_err());

    let mut bytes = std::fs::read(&weights).expect("read");
    bytes[5] ^= 0xff;
    std::fs::write(&weights, &bytes).expect("corrupt");
    model.send_message(KernelMsg::Tick).expect("tick");
    match h.exit_of(model.get_id(), Duration::from_secs(5)).await {
        Seen::Failed(_, reason) => {
            assert!(
                reason.contains("sha256") && reason.contains("clf.pt"),
                "{reason}"
            )
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let err = h.spawn(&s).await.map(|_| ()).expect_err("refuses to start");
    assert!(err.to_string().contains("restore_model_weights"), "{err}");
}
