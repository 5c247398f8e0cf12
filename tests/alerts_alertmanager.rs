//! The Alertmanager notifier against a real Alertmanager (Debian's
//! `prometheus-alertmanager`, installed by `.ci/install-deps`) started on loopback: an
//! incident opened by the real dispatcher fires there with its labels, is posted again
//! while open, and ends when the incident closes; an alert raised while Alertmanager is
//! down arrives once it is up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use grace::bus::{Event, Topic};
use grace::config::Config;
use grace::incident::{IncidentDraft, Severity};
use grace::playbook::{
    parse_playbook, Action, ActionContext, ActionError, ActionRegistry, Args, Dispatched,
    Dispatcher, Parsed,
};
use grace::state::StatePaths;
use grace::tree::System;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// A running Alertmanager with its own config and storage; killed on drop.
struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["prometheus-alertmanager", "alertmanager"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("Alertmanager is not installed: run .ci/install-deps (Debian package prometheus-alertmanager)");
}

/// A port free right now on loopback.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Alertmanager {
    /// Starts Alertmanager on `port`: no cluster, its storage in a temporary directory,
    /// a route to a receiver that sends nothing, and a resolve timeout of an hour, so
    /// only an `endsAt` Grace posts can end an alert within a test.
    async fn start(port: u16) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "global:\n  resolve_timeout: 1h\nroute:\n  receiver: nobody\n  group_wait: 1h\n\
             receivers:\n  - name: nobody\n",
        )
        .expect("config");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(alertmanager_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr")).expect("stderr file"),
            ))
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            addr,
            _dir: dir,
        };
        let ready = eventually(Duration::from_secs(20), || async {
            matches!(grace::alerts::http::get(addr, "/-/ready", Duration::from_secs(1)).await,
                Ok(a) if a.status == 200)
        })
        .await;
        assert!(ready, "alertmanager never became ready: {}", am.stderr());
        am
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The alerts Alertmanager holds as not yet ended (its API leaves out the ended).
    async fn alerts(&self) -> Vec<Value> {
        let a = grace::alerts::http::get(self.addr, "/api/v2/alerts", Duration::from_secs(2))
            .await
            .expect("GET /api/v2/alerts");
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        serde_json::from_slice(&a.body).expect("alerts json")
    }

    /// The alert whose label `key` is `value`, if Alertmanager holds it.
    async fn find(&self, key: &str, value: &str) -> Option<Value> {
        self.alerts()
            .await
            .into_iter()
            .find(|a| a["labels"][key] == value)
    }

    /// Polls every 50 ms for the alert whose label `key` is `value`.
    async fn wait_for(&self, key: &str, value: &str, timeout: Duration) -> Option<Value> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.find(key, value).await;
            if found.is_some() || tokio::time::Instant::now() >= end {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}

/// `gate`: waits for a permit, so the incident stays open until the test says.
struct Gate(Arc<Semaphore>);

#[async_trait]
impl Action for Gate {
    async fn run(&self, _: &ActionContext, _: &Args) -> Result<Value, ActionError> {
        let permit = self
            .0
            .acquire()
            .await
            .map_err(|e| ActionError::failed(e.to_string()))?;
        permit.forget();
        Ok(json!({ "released": true }))
    }
}

/// `healthy`: the service answers (verification passes).
struct Healthy;

#[async_trait]
impl Action for Healthy {
    async fn run(&self, _: &ActionContext, _: &Args) -> Result<Value, ActionError> {
        Ok(json!({ "answers": true }))
    }
}

const GATED: &str = "name: gated\ntriggers: [gated]\nsteps:\n  - name: hold\n    action: gate\n\
verify:\n  steps:\n    - name: v\n      action: healthy\n";

struct Setup {
    system: Arc<System>,
    dispatcher: Arc<Dispatcher>,
    gate: Arc<Semaphore>,
}

fn setup(alertmanager: &str, dir: &Path) -> Setup {
    let mut c = Config::default();
    c.playbooks.verify = grace::playbook::VerifySettings {
        interval: Duration::from_millis(10),
        successes: 2,
        window: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
    };
    c.alerts.alertmanager_url = Some(alertmanager.to_owned());
    c.alerts.alertmanager_resend = Duration::from_millis(300);
    c.alerts.alertmanager_instance = Some("test-host".to_owned());
    c.alerts.dashboard_url = Some("http://127.0.0.1:8000/".to_owned());
    let system = System::open(Arc::new(c), StatePaths::new(dir.join("state"))).expect("system");
    let gate = Arc::new(Semaphore::new(0));
    let mut actions = ActionRegistry::builtin();
    actions.register("gate", Gate(gate.clone()));
    actions.register("healthy", Healthy);
    assert!(matches!(
        parse_playbook("gated.yaml", GATED, &actions),
        Ok(Parsed::Loaded(_))
    ));
    let books = dir.join("playbooks");
    std::fs::create_dir_all(&books).expect("playbooks dir");
    std::fs::write(books.join("gated.yaml"), GATED).expect("playbook");
    let set = grace::playbook::load_playbooks_with(Some(&books), &actions).expect("load");
    Setup {
        system,
        dispatcher: Dispatcher::new(set, actions, 2),
        gate,
    }
}

fn draft(component: &str) -> Event {
    let d = IncidentDraft {
        trigger: "gated".into(),
        component: component.into(),
        failure_mode: "test_failure".into(),
        severity: Severity::High,
        playbook: None,
        summary: format!("gated on {component}"),
        details: Value::Null,
        detected_at: None,
    };
    Event::new(Topic::EventIncident, Some(component), d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_fires_in_alertmanager_until_it_closes() {
    let am = Alertmanager::start(free_port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = setup(&am.url(), dir.path());

    let d = s.dispatcher.dispatch(&s.system, &draft("svc"));
    let Dispatched::Started { incident_id, .. } = d else {
        panic!("not started: {d:?}");
    };
    let Some(a) = am
        .wait_for("incident_id", &incident_id, Duration::from_secs(10))
        .await
    else {
        panic!(
            "the incident's alert never reached Alertmanager: {:?}",
            am.alerts().await
        );
    };
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "GraceIncidentOpened", "{a:#}");
    assert_eq!(labels["severity"], "warning", "{a:#}");
    assert_eq!(labels["component"], "svc", "{a:#}");
    assert_eq!(labels["trigger"], "gated", "{a:#}");
    assert_eq!(labels["incident_severity"], "high", "{a:#}");
    assert_eq!(labels["instance"], "test-host", "{a:#}");
    assert_eq!(a["status"]["state"], "active", "{a:#}");
    assert_eq!(a["generatorURL"], "http://127.0.0.1:8000/", "{a:#}");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .is_some_and(|t| t.contains(&incident_id) && t.contains("gated on svc")),
        "{a:#}"
    );

    // While the incident is open, the alert is posted again: Alertmanager's updatedAt
    // moves on.
    let first = a["updatedAt"].as_str().expect("updatedAt").to_owned();
    assert!(
        eventually(Duration::from_secs(5), || async {
            am.find("incident_id", &incident_id)
                .await
                .is_some_and(|a| a["updatedAt"].as_str().is_some_and(|u| u > first.as_str()))
        })
        .await,
        "the firing alert was not posted again"
    );

    // The playbook ends, recovery is verified, the incident closes: the alert ends.
    s.gate.add_permits(1);
    assert!(
        eventually(Duration::from_secs(10), || async {
            am.find("incident_id", &incident_id).await.is_none()
        })
        .await,
        "the alert did not end after the incident closed: {:?}",
        am.find("incident_id", &incident_id).await
    );
    let closed = std::fs::read_to_string(s.system.paths.incidents()).expect("incidents");
    assert!(
        closed
            .lines()
            .any(|l| l.contains(&incident_id) && l.contains("\"resolved\"")),
        "{closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_while_alertmanager_is_down_arrives_once_it_is_up() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = StatePaths::new(dir.path());
    paths.create().expect("state dir");
    let mut cfg = grace::alerts::AlertsConfig {
        alertmanager_url: Some(format!("http://127.0.0.1:{port}")),
        alertmanager_instance: Some("down-then-up".to_owned()),
        ..Default::default()
    };
    cfg.alertmanager_event_hold = Duration::from_secs(600);
    // The raise returns at once with its file written, Alertmanager or not.
    let alert = grace::alerts::raise(
        &paths,
        &cfg,
        grace::alerts::Severity::Critical,
        "watchdog.crash_loop",
        "serve keeps crashing",
        json!({ "failures": 5 }),
    )
    .expect("raise");
    assert!(alert.file.is_file());
    // Let the first posts fail before Alertmanager is there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let am = Alertmanager::start(port).await;
    let Some(a) = am
        .wait_for("instance", "down-then-up", Duration::from_secs(15))
        .await
    else {
        panic!("the alert was not retried: {:?}", am.alerts().await);
    };
    assert_eq!(a["labels"]["alertname"], "GraceWatchdogCrashLoop", "{a:#}");
    assert_eq!(a["labels"]["severity"], "critical", "{a:#}");
    assert_eq!(a["labels"]["component"], "watchdog", "{a:#}");
    assert_eq!(a["status"]["state"], "active", "{a:#}");
    // An event ends by itself: its endsAt is the hold after it was raised.
    let starts = chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str().expect("startsAt"))
        .expect("startsAt time");
    let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().expect("endsAt"))
        .expect("endsAt time");
    assert_eq!((ends - starts).num_seconds(), 600, "{a:#}");
}
