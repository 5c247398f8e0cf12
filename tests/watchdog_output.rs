//! The watchdog never dies of its own output: the real `grace watch`, supervising the
//! real `grace serve`, keeps running and restarting serve with its stdout and stderr
//! on a pipe nobody reads, after SIGHUP, and after its terminal hangs up.

mod watchdog_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use grace::state::{lock_holder, ServeInfo};
use nix::sys::signal::Signal;
use watchdog_support::{alive, poll, signal, Instance, Proc, MARK};

const SECS: Duration = Duration::from_secs(8);

/// The pid in serve.json, once serve wrote it.
fn serve_pid(inst: &Instance) -> Option<u32> {
    ServeInfo::read(&inst.paths).ok().flatten().map(|i| i.pid)
}

/// SIGKILLs the running serve and waits for the watchdog to start a new one.
fn kill_serve_and_see_it_restarted(inst: &Instance, watchdog: u32) -> u32 {
    let before = serve_pid(inst).expect("serve.json");
    signal(before, Signal::SIGKILL);
    assert!(
        poll(SECS, || serve_pid(inst)
            .is_some_and(|p| p != before && alive(p))),
        "serve not restarted: {:?}",
        inst.events()
    );
    assert!(alive(watchdog), "the watchdog died: {:?}", inst.events());
    serve_pid(inst).expect("serve.json")
}

/// Stops the watchdog with SIGTERM and waits until it is gone.
fn stop(inst: &Instance, watchdog: u32) {
    signal(watchdog, Signal::SIGTERM);
    assert!(poll(SECS, || !alive(watchdog)), "the watchdog did not stop");
    assert!(lock_holder(&inst.paths.watchdog_lock()).is_none());
    let stopped = inst.events_named("watchdog.stopped");
    assert_eq!(stopped.len(), 1, "{:?}", inst.events());
}

#[test]
fn a_closed_output_pipe_and_sighup_leave_the_watchdog_supervising() {
    let inst = Instance::new("min_uptime = \"100ms\"");
    let mut w = Proc(
        inst.grace(&["watch", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn grace watch"),
    );
    let wd = w.id();
    assert!(
        poll(SECS, || serve_pid(&inst).is_some_and(alive)),
        "{:?}",
        inst.events()
    );
    // The reader goes away (`grace watch 2>&1 | head -c 300`).
    drop(w.0.stdout.take());
    drop(w.0.stderr.take());

    let second = kill_serve_and_see_it_restarted(&inst, wd);
    assert!(
        !inst.events_named("watchdog.output_lost").is_empty(),
        "{:?}",
        inst.events()
    );

    // SIGHUP without a terminal: `grace restart`'s signal, serve is replaced.
    signal(wd, Signal::SIGHUP);
    assert!(poll(SECS, || serve_pid(&inst)
        .is_some_and(|p| p != second && alive(p))));
    kill_serve_and_see_it_restarted(&inst, wd);

    signal(wd, Signal::SIGTERM);
    let status = w.wait().expect("wait");
    assert!(status.success(), "{status}: {:?}", inst.events());
    let stopped = inst.events_named("watchdog.stopped");
    assert!(
        stopped[0]["fields"]["dropped_stderr_writes"].as_u64() > Some(0),
        "{stopped:?}"
    );
}

#[test]
fn a_hung_up_terminal_leaves_the_watchdog_supervising() {
    let inst = Instance::new("min_uptime = \"100ms\"");
    let argv: Vec<String> = {
        let c = inst.grace(&["watch", "--port", "0"]);
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect()
    };
    // `script` runs the watchdog as the session leader of a new terminal; killing
    // `script` closes the terminal's master side: the kernel hangs the terminal up and
    // sends SIGHUP, as when a terminal window is closed.
    let mut term = Proc(
        Command::new("script")
            .args(["-qfec", &format!("exec {}", argv.join(" ")), "/dev/null"])
            .env(MARK, inst.root().display().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn script"),
    );
    assert!(
        poll(SECS, || serve_pid(&inst).is_some_and(alive)),
        "{:?}",
        inst.events()
    );
    let wd = lock_holder(&inst.paths.watchdog_lock()).expect("a watchdog");
    let first = serve_pid(&inst).expect("serve.json");
    term.0.kill().expect("kill script");
    term.wait().expect("wait script");
    assert!(
        poll(SECS, || !inst
            .events_named("watchdog.terminal_lost")
            .is_empty()),
        "{:?}",
        inst.events()
    );
    assert!(alive(wd), "the watchdog died: {:?}", inst.events());
    assert_eq!(serve_pid(&inst), Some(first), "a hang-up is not a restart");
    assert!(alive(first));
    kill_serve_and_see_it_restarted(&inst, wd);
    stop(&inst, wd);
}
