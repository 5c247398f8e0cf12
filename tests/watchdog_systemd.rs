//! Boot integration: under systemd (`Type=notify`, `WatchdogSec=`) the watchdog sends
//! `READY=1` and keeps sending `WATCHDOG=1` at half of `WATCHDOG_USEC`.

mod watchdog_support;

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use watchdog_support::{Instance, Proc};

#[test]
fn notifies_ready_and_pings_the_service_manager() {
    let inst =
        Instance::new(r#"command = ["sh", "-c", "echo $$ >> {dir}/starts; exec {dir}/sleep 300"]"#);
    let sock_path = inst.root().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let _w = Proc(
        inst.grace(&["watch"])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "100000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch"),
    );
    let mut got: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
        if got.iter().any(|m| m == "READY=1") && pings >= 3 {
            break;
        }
    }
    assert!(got.iter().any(|m| m == "READY=1"), "{got:?}");
    assert!(
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3,
        "{got:?}"
    );
    assert!(
        got.iter().any(|m| m.starts_with("STATUS=serve running")),
        "{got:?}"
    );
    // serve does not inherit the notification socket.
    let serve = inst.starts()[0];
    let env = std::fs::read(format!("/proc/{serve}/environ")).expect("environ");
    assert!(!env
        .split(|b| *b == 0)
        .any(|kv| kv.starts_with(b"NOTIFY_SOCKET=")));
}
