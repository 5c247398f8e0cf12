//! Boot integration: under systemd (`Type=notify`, `WatchdogSec=`) the watchdog sends
//! `READY=1` only once serve's health verdict is `healthy` (or at once when there is no
//! health to wait for, or the kill switch holds serve down), a `STATUS=` line for each
//! change, and keeps sending `WATCHDOG=1` at half of `WATCHDOG_USEC`.

mod watchdog_support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use watchdog_support::{fake_serve_command, fake_serve_main, Instance, Proc};

/// Entry of the fake serve process (this binary re-executed by the watchdog).
#[test]
fn fake_serve_entry() {
    if fake_serve_main() {
        return;
    }
    assert!(std::env::var_os(watchdog_support::FAKE_SERVE).is_none());
}

/// The notification socket of a pretend service manager.
struct Manager {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let sock = UnixDatagram::bind(path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Manager {
            sock,
            got: Vec::new(),
        }
    }

    /// Receives until `done` holds for what was received, or `timeout` passes.
    fn until(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        while !done(&self.got) {
            if Instant::now() >= deadline {
                return false;
            }
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        true
    }

    fn ready(&self) -> bool {
        self.got.iter().any(|m| m == "READY=1")
    }
}

/// `grace watch` of `inst`, its notifications to `<root>/notify.sock`, with `env` added.
fn watch_notifying(inst: &Instance, env: &[(&str, &str)]) -> Proc {
    let mut cmd = inst.grace(&["watch"]);
    cmd.env("NOTIFY_SOCKET", inst.root().join("notify.sock"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(cmd.spawn().expect("watch"))
}

fn has(got: &[String], prefix: &str) -> bool {
    got.iter().any(|m| m.starts_with(prefix))
}

#[test]
fn notifies_ready_and_pings_the_service_manager() {
    let inst =
        Instance::new(r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]"#);
    let mut m = Manager::bind(&inst.root().join("notify.sock"));
    let _w = watch_notifying(&inst, &[("WATCHDOG_USEC", "100000")]);
    let pings = |got: &[String]| got.iter().filter(|m| *m == "WATCHDOG=1").count();
    m.until(Duration::from_secs(5), |got| {
        got.iter().any(|m| m == "READY=1") && pings(got) >= 3
    });
    assert!(m.ready(), "{:?}", m.got);
    assert!(pings(&m.got) >= 3, "{:?}", m.got);
    assert!(has(&m.got, "STATUS=serve running"), "{:?}", m.got);
    // serve does not inherit the notification socket.
    let serve = inst.starts()[0];
    let env = std::fs::read(format!("/proc/{serve}/environ")).expect("environ");
    assert!(!env
        .split(|b| *b == 0)
        .any(|kv| kv.starts_with(b"NOTIFY_SOCKET=")));
}

#[test]
fn ready_waits_for_a_healthy_verdict_not_the_first_answer() {
    let inst = Instance::new("");
    let cfg = format!(
        "[watchdog]\n{}\nhealth_check = true\ncheck_interval = \"100ms\"\nhealth_timeout = \"500ms\"\n",
        fake_serve_command("fake_serve_entry", inst.root())
    );
    std::fs::write(&inst.config, cfg).expect("config");
    let flag = inst.root().join("degraded");
    std::fs::write(&flag, b"").expect("degraded flag");
    let mut m = Manager::bind(&inst.root().join("notify.sock"));
    let _w = watch_notifying(&inst, &[]);
    // Serve answers (the watchdog counts it up) with the verdict degraded: not ready.
    assert!(
        m.until(Duration::from_secs(10), |got| has(
            got,
            "STATUS=serve up, not healthy"
        )),
        "{:?} {:?}",
        m.got,
        inst.events()
    );
    assert!(
        !inst.events_named("serve.ready").is_empty(),
        "{:?}",
        inst.events()
    );
    // A few more probes, all degraded: still not ready.
    m.until(Duration::from_millis(500), |_| false);
    assert!(!m.ready(), "READY=1 before serve was healthy: {:?}", m.got);

    std::fs::remove_file(&flag).expect("clear flag");
    assert!(
        m.until(Duration::from_secs(5), |got| has(
            got,
            "STATUS=serve healthy"
        )),
        "{:?}",
        m.got
    );
    let ready = m.got.iter().position(|s| s == "READY=1");
    let healthy = m
        .got
        .iter()
        .position(|s| s.starts_with("STATUS=serve healthy"));
    assert!(
        ready.is_some() && ready < healthy,
        "READY=1 with the healthy verdict: {:?}",
        m.got
    );
}

#[test]
fn ready_when_the_kill_switch_holds_serve_down() {
    let inst =
        Instance::new(r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]"#);
    let out = inst.run(&["stop"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inst.paths.state_json()).expect("state.json"))
            .unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(state["manual_shutdown"], true, "{out:?}");
    let mut m = Manager::bind(&inst.root().join("notify.sock"));
    let _w = watch_notifying(&inst, &[]);
    assert!(
        m.until(Duration::from_secs(5), |got| has(
            got,
            "STATUS=serve stopped"
        )),
        "{:?}",
        m.got
    );
    assert!(m.ready(), "{:?}", m.got);
    assert!(
        inst.starts().is_empty(),
        "serve started despite the kill switch"
    );
}
