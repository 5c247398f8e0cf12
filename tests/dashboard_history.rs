//! The dashboard's restart and MTTR history outlives serve: a kernel restart and a
//! repaired incident shown by `/api/timeline` are shown again, the same, by the next
//! serve of the state directory after the first was killed with SIGKILL.

mod watchdog_support;

use std::process::Stdio;
use std::time::Duration;

use grace::state::ServeInfo;
use nix::sys::signal::Signal;
use serde_json::Value;
use watchdog_support::{poll, signal, Instance, Proc};

struct Serve<'a> {
    inst: &'a Instance,
    proc: Proc,
    info: ServeInfo,
    rt: tokio::runtime::Runtime,
}

impl<'a> Serve<'a> {
    /// Starts `grace serve --port 0` and waits until it answers.
    fn start(inst: &'a Instance) -> Serve<'a> {
        let _ = std::fs::remove_file(inst.paths.serve_json());
        let proc = Proc(
            inst.grace(&["serve", "--port", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn serve"),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let mut info = None;
        let up = poll(Duration::from_secs(30), || {
            info = ServeInfo::read(&inst.paths)
                .ok()
                .flatten()
                .filter(|i| i.pid == proc.id());
            info.as_ref().is_some_and(|i| {
                rt.block_on(grace::alerts::http::get(
                    i.health_addr(),
                    "/health",
                    Duration::from_secs(2),
                ))
                .is_ok_and(|a| a.status == 200)
            })
        });
        assert!(up, "serve never answered");
        Serve {
            inst,
            proc,
            info: info.expect("serve.json"),
            rt,
        }
    }

    fn request(&self, method: &str, path: &str) -> (u16, Value) {
        let token = std::fs::read_to_string(self.inst.paths.token()).expect("token");
        let auth = format!("Bearer {}", token.trim());
        let headers = [("authorization", auth.as_str())];
        let body = (method == "POST").then(|| ("application/json", b"{}".to_vec()));
        let a = self
            .rt
            .block_on(grace::alerts::http::request(
                self.info.health_addr(),
                method,
                path,
                "localhost",
                body,
                &headers,
                Duration::from_secs(5),
            ))
            .expect("answer");
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }

    fn timeline(&self) -> Value {
        self.request("GET", "/api/timeline").1
    }
}

/// The operator's restart of `kernel` in a timeline, and the closed incidents with MTTR.
fn history(t: &Value, kernel: &str) -> (Vec<Value>, Vec<Value>) {
    let list = |k: &str| t[k].as_array().cloned().unwrap_or_default();
    let restarts = list("restarts")
        .into_iter()
        .filter(|r| r["kernel"] == kernel && r["reason"] == "operator")
        .collect();
    let closed = list("incidents")
        .into_iter()
        .filter(|i| i["mttr_seconds"].is_number())
        .collect();
    (restarts, closed)
}

#[test]
fn restarts_and_mttr_survive_a_killed_serve() {
    let inst = Instance::new("");
    // The embedded default: the demo kernels and the model's weights to repair.
    std::fs::write(&inst.config, grace::config::DEFAULT_TOML).expect("config");
    let first = Serve::start(&inst);
    // Serve is ready before its own kernels' supervisor has started them all.
    let mut answer = (0, Value::Null);
    assert!(
        poll(Duration::from_secs(20), || {
            answer = first.request("POST", "/api/kernels/kv_store/restart");
            answer.0 == 200
        }),
        "restart of kv_store: {answer:?}"
    );
    let weights = inst.paths.root().join("models/model.pt");
    assert!(
        poll(Duration::from_secs(20), || weights.is_file()),
        "no weights file"
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&weights)
        .expect("open weights");
    std::io::Write::write_all(&mut f, b"corrupted").expect("corrupt");
    drop(f);
    let mut before = (Vec::new(), Vec::new());
    assert!(
        poll(Duration::from_secs(30), || {
            before = history(&first.timeline(), "kv_store");
            before.0.len() == 1 && !before.1.is_empty()
        }),
        "the restart and the repaired incident never showed: {}",
        first.timeline()
    );
    assert!(inst.paths.restart_history().is_file());

    signal(first.proc.id(), Signal::SIGKILL);
    let Serve { mut proc, .. } = first;
    let _ = proc.wait();

    let second = Serve::start(&inst);
    let after = history(&second.timeline(), "kv_store");
    assert_eq!(after.0, before.0, "the restart, as it was");
    for i in &before.1 {
        assert!(
            after
                .1
                .iter()
                .any(|j| j["incident_id"] == i["incident_id"]
                    && j["mttr_seconds"] == i["mttr_seconds"]),
            "incident {} lost: {after:?}",
            i["incident_id"]
        );
    }
    let Serve { mut proc, .. } = second;
    signal(proc.id(), Signal::SIGTERM);
    let _ = proc.wait();
}
