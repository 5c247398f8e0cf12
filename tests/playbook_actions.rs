//! Built-in actions that reach outside the tree, on real processes, files and HTTP on
//! loopback: exec, webhook, escalate, notify, resource_cleanup, emergency_mode, wait.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use grace::config::Config;
use grace::incident::{Incident, IncidentStatus, Severity};
use grace::playbook::action::Escalation;
use grace::playbook::{ActionContext, ActionError, ActionRegistry, Args};
use grace::state::StatePaths;
use grace::tree::System;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn incident() -> Incident {
    Incident {
        incident_id: "inc_20250101_000000_000042".into(),
        detected_at: grace::time::rfc3339(grace::time::now()),
        resolved_at: None,
        status: IncidentStatus::Mitigating,
        failure_mode: "error_burst".into(),
        severity: Severity::Critical,
        component: "api".into(),
        trigger: "event_anomaly".into(),
        playbook: Some("run_diagnostics".into()),
        steps: Vec::new(),
        mttr_seconds: None,
        success: None,
        occurrences: 1,
        summary: "errors on api".into(),
        details: Value::Null,
        closed_reason: None,
    }
}

struct Env {
    system: Arc<System>,
    escalation: Arc<Escalation>,
    _dir: tempfile::TempDir,
}

fn env(config: Config) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = System::open(Arc::new(config), StatePaths::new(dir.path())).expect("system");
    Env {
        system,
        escalation: Arc::new(Escalation::default()),
        _dir: dir,
    }
}

impl Env {
    async fn run(
        &self,
        action: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, ActionError> {
        let actions = ActionRegistry::builtin();
        let a = actions.get(action).expect("built-in action");
        let map = match args {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let ctx = ActionContext::new(
            self.system.clone(),
            Arc::new(incident()),
            "test_playbook",
            "step",
            timeout,
            self.escalation.clone(),
        );
        let args = Args::new(action, map);
        a.validate(&args).map_err(|reason| ActionError::BadArgs {
            action: action.into(),
            reason,
        })?;
        tokio::time::timeout(timeout, a.run(&ctx, &args))
            .await
            .unwrap_or_else(|_| Err(ActionError::failed("timed out")))
    }

    fn root(&self) -> &std::path::Path {
        self.system.paths.root()
    }
}

const SEC: Duration = Duration::from_secs(5);

#[tokio::test]
async fn exec_runs_a_command_with_the_incident_in_its_environment() {
    let e = env(Config::default());
    let out = e.root().join("env.txt");
    let cmd = format!(
        "printf '%s|%s|%s' \"$GRACE_INCIDENT_ID\" \"$GRACE_COMPONENT\" \"$GRACE_SEVERITY\" > {0}; echo \"$GRACE_INCIDENT_JSON\" > {0}.json",
        out.display()
    );
    let r = e
        .run("exec", json!({ "command": cmd }), SEC)
        .await
        .expect("runs");
    assert_eq!(r["exit_code"], 0);
    let text = std::fs::read_to_string(&out).expect("written");
    assert_eq!(text, "inc_20250101_000000_000042|api|critical");
    let j: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", out.display())).expect("json"),
    )
    .expect("incident json");
    assert_eq!(j["trigger"], "event_anomaly");

    let argv = e
        .run(
            "exec",
            json!({ "command": ["sh", "-c", "echo out; echo err >&2"] }),
            SEC,
        )
        .await
        .expect("argv form");
    assert_eq!(
        (argv["stdout"].as_str(), argv["stderr"].as_str()),
        (Some("out"), Some("err"))
    );
}

#[tokio::test]
async fn exec_fails_on_a_non_zero_exit() {
    let e = env(Config::default());
    let err = e
        .run("exec", json!({ "command": "echo broken >&2; exit 3" }), SEC)
        .await
        .expect_err("exit 3");
    let msg = err.to_string();
    assert!(
        msg.contains("exit status: 3") && msg.contains("broken"),
        "{msg}"
    );
    assert!(err.retryable());
}

#[tokio::test]
async fn exec_on_timeout_kills_the_whole_process_group() {
    let e = env(Config::default());
    let pidfile = e.root().join("child.pid");
    let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let err = e
        .run(
            "exec",
            json!({ "command": cmd }),
            Duration::from_millis(500),
        )
        .await
        .expect_err("timeout");
    assert!(err.to_string().contains("timed out"));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    let mut gone = false;
    for _ in 0..200 {
        // Signal 0 only checks existence; ESRCH means it is gone (reaped by init).
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"));
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the background sleep {pid} was killed with its group");
}

/// Accepts one HTTP request on loopback, answers `status`, and hands back the body.
async fn one_request(status: u16) -> (String, tokio::task::JoinHandle<String>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let h = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.expect("read");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    s.write_all(resp.as_bytes()).await.expect("write");
                    return body.to_owned();
                }
            }
        }
    });
    (url, h)
}

#[tokio::test]
async fn webhook_posts_the_incident_as_json() {
    let e = env(Config::default());
    let (url, server) = one_request(200).await;
    let r = e
        .run("webhook", json!({ "url": url }), SEC)
        .await
        .expect("posted");
    assert_eq!(r["status"], 200);
    let body: Value = serde_json::from_str(&server.await.expect("server")).expect("json body");
    assert_eq!(body["incident_id"], "inc_20250101_000000_000042");
    assert_eq!(body["component"], "api");

    let (url, server) = one_request(500).await;
    let err = e
        .run("webhook", json!({ "url": url }), SEC)
        .await
        .expect_err("500");
    assert!(err.to_string().contains("status 500"), "{err}");
    server.await.expect("server");
}

#[tokio::test]
async fn escalate_runs_the_command_posts_the_webhook_raises_an_alert_and_marks() {
    let mut cfg = Config::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("escalated.txt");
    cfg.playbooks.escalate_command = Some(format!(
        "echo \"$GRACE_INCIDENT_ID $GRACE_ESCALATION_REASON\" > {}",
        out.display()
    ));
    let (url, server) = one_request(200).await;
    cfg.playbooks.escalate_webhook = Some(url);
    let e = env(cfg);
    let r = e
        .run("escalate", json!({ "reason": "needs a human" }), SEC)
        .await
        .expect("escalated");
    assert_eq!(r["webhook_status"], 200);
    assert_eq!(
        std::fs::read_to_string(&out).expect("command ran").trim(),
        "inc_20250101_000000_000042 needs a human"
    );
    let body: Value = serde_json::from_str(&server.await.expect("server")).expect("json");
    assert_eq!(body["event"], "incident.escalated");
    assert_eq!(e.escalation.get().as_deref(), Some("needs a human"));
    let latest: Value = serde_json::from_str(
        &std::fs::read_to_string(e.root().join("alerts/latest_notification.json")).expect("alert"),
    )
    .expect("json");
    assert_eq!(latest["severity"], "critical");
    assert_eq!(latest["requires_attention"], true);
}

#[tokio::test]
async fn notify_writes_an_alert_file() {
    let e = env(Config::default());
    let r = e
        .run(
            "notify",
            json!({ "level": "warning", "message": "hello operator" }),
            SEC,
        )
        .await
        .expect("notified");
    let file = r["alert"].as_str().expect("alert file");
    assert!(file.contains("alerts/warning_"), "{file}");
    let a: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("file")).expect("json");
    assert_eq!(a["event_type"], "playbook.notify");
    assert_eq!(a["payload"]["summary"], "hello operator");
    assert_eq!(a["payload"]["incident_id"], "inc_20250101_000000_000042");
}

#[tokio::test]
async fn resource_cleanup_frees_old_files_and_reports_the_bytes() {
    let e = env(Config::default());
    let old = SystemTime::now() - Duration::from_secs(3 * 3600);
    let mut expect = 0u64;
    for (dir, name, size) in [
        ("logs", "grace.jsonl.2024-01-01", 1000),
        ("diagnostics", "r1.json", 300),
        ("alerts", "info_20240101_000000_1.json", 20),
    ] {
        let p = e.root().join(dir).join(name);
        std::fs::write(&p, vec![b'x'; size]).expect("write");
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(old))
            .expect("mtime");
        expect += size as u64;
    }
    let live = e.system.paths.log_file();
    std::fs::write(&live, b"live").expect("live log");
    std::fs::File::options()
        .write(true)
        .open(&live)
        .and_then(|f| f.set_modified(old))
        .expect("mtime");
    let fresh = e.root().join("diagnostics/new.json");
    std::fs::write(&fresh, b"{}").expect("fresh");

    let r = e
        .run("resource_cleanup", json!({ "older_than": "1h" }), SEC)
        .await
        .expect("cleaned");
    assert_eq!(r["files_removed"], 3);
    assert_eq!(r["bytes_freed"], expect);
    assert!(live.exists(), "the live log is kept");
    assert!(fresh.exists(), "recent files are kept");

    let err = e
        .run("resource_cleanup", json!({ "dirs": ["snapshots"] }), SEC)
        .await
        .expect_err("only logs, alerts, diagnostics");
    assert!(!err.retryable());
}

#[tokio::test]
async fn emergency_mode_and_restart_service_act_on_the_system() {
    let e = env(Config::default());
    let r = e
        .run("emergency_mode", json!({ "on": true }), SEC)
        .await
        .expect("on");
    assert_eq!(r["was"], false);
    assert!(e.system.emergency());
    e.run("emergency_mode", json!({ "on": false }), SEC)
        .await
        .expect("off");
    assert!(!e.system.emergency());

    let mut rx = e.system.restart_requests();
    e.run("restart_service", json!({}), SEC)
        .await
        .expect("requested");
    assert!(rx.has_changed().expect("sender alive"));
    assert!(rx
        .borrow_and_update()
        .as_deref()
        .is_some_and(|r| r.contains("test_playbook")));
}

#[tokio::test(start_paused = true)]
async fn wait_waits_for_its_duration() {
    let e = env(Config::default());
    let t0 = tokio::time::Instant::now();
    e.run(
        "wait",
        json!({ "duration": "90s" }),
        Duration::from_secs(100),
    )
    .await
    .expect("waited");
    assert_eq!(t0.elapsed(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn wait_until_clear_ends_once_the_condition_has_stayed_clear() {
    use std::collections::HashSet;
    let e = env(Config::default());
    let key = || {
        let i = incident();
        HashSet::from([(i.trigger, i.component, i.failure_mode)])
    };
    let conditions = e.system.conditions.clone();
    conditions.set("trigger.event_anomaly", key());
    // Clear for a moment at 1 s, again at 3 s for good.
    let c = conditions.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.set("trigger.event_anomaly", HashSet::new());
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.set("trigger.event_anomaly", key());
        tokio::time::sleep(Duration::from_millis(1800)).await;
        c.set("trigger.event_anomaly", HashSet::new());
    });
    let args = json!({ "duration": "1m", "until_clear": true, "clear_for": "500ms" });
    let out = e
        .run("wait", args, Duration::from_secs(120))
        .await
        .expect("waits");
    assert_eq!(out["cleared"], true, "{out}");
    let ms = out["waited_ms"].as_u64().expect("ms");
    assert!((3500..3700).contains(&ms), "{out}");

    // A condition that never clears: the bound ends it, and says so.
    conditions.set("trigger.event_anomaly", key());
    let args = json!({ "duration": "2s", "until_clear": true });
    let out = e
        .run("wait", args, Duration::from_secs(10))
        .await
        .expect("waits");
    assert_eq!(
        (out["cleared"].as_bool(), out["waited_ms"].as_u64()),
        (Some(false), Some(2000))
    );
    let bad = json!({ "duration": "1s", "until_clear": true, "clear_for": "soon" });
    assert!(e.run("wait", bad, Duration::from_secs(10)).await.is_err());
}
