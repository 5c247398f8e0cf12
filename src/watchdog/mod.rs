//! The OS-process watchdog (`grace watch`): runs serve, restarts it, honours the kill switch.
//!
//! # What it guarantees
//!
//! - **Crashes are seen at once.** The actor awaits the child's exit together with its
//!   control queue and timers; nothing polls for exits. The first restart after a crash
//!   is immediate; repeated failed starts back off exponentially with jitter
//!   ([`policy::backoff`]); after `max_consecutive_failures` it pauses
//!   `pause_after_failures` and raises a critical alert (`watchdog.crash_loop`).
//! - **Hangs are seen by a liveness probe.** `GET /health` on the port in `serve.json`
//!   every `check_interval`; `health_failures` probes in a row without an answer (a
//!   SIGSTOPped serve times out) kill the process group and restart. A 503 (degraded)
//!   is an answer: in-process healing owns that case.
//! - **Readiness is health, not time.** A start is good once it answered 200 and stayed
//!   up `min_uptime`; one that dies before, or is not healthy within `ready_timeout`, is
//!   a failed start. A good start resets the failure count and the backoff.
//! - **Exit 75 is not a crash.** A serve that exits with
//!   [`crate::serve::EXIT_RESTART_REQUESTED`] after a good start is replaced at once
//!   without counting; one that asks before it has served `min_uptime` counts as a
//!   failed start, so a serve that asks for a restart at every start backs off, pauses
//!   and raises the critical alert like any crash loop.
//! - **The kill switch is obeyed.** `state.json`'s `manual_shutdown` is read at start-up
//!   and on SIGUSR1 (sent by `grace stop`/`grace start`) and after every exit; a set
//!   switch stops serve gracefully (SIGTERM to its group, SIGKILL after `stop_timeout`)
//!   and nothing restarts it until `grace start` clears it.
//! - **One serve per state directory, no orphans.** `watchdog.lock` admits one watchdog;
//!   serve takes `serve.lock`. Serve runs as the leader of its own process group, and
//!   the watchdog is a child subreaper: when serve ends, its group is SIGKILLed and any
//!   descendant that double-forked away (and so became our child) is killed and reaped.
//!   A watchdog started after its predecessor was SIGKILLed **replaces** the serve left
//!   running: it finds it through `state.json`'s `child` record (pid and start time, so
//!   a reused pid is never mistaken for it) or as the `grace serve` of this directory
//!   holding `serve.lock`, stops its group gracefully, then starts its own. Replacing
//!   rather than adopting keeps one invariant: the serve a watchdog watches is always
//!   its own child, so its exit is always seen at once.
//!
//! Signals: SIGTERM/SIGINT stop serve gracefully and end the watchdog (exit 0); SIGUSR1
//! re-reads the kill switch; SIGHUP restarts serve, except when the watchdog's terminal
//! hung up (it then stops echoing and keeps supervising); SIGPIPE is caught, and a
//! failed write to stderr is dropped and counted, never fatal. Under systemd
//! (`NOTIFY_SOCKET`) it sends `READY=1` once serve's `GET /health` gives the verdict
//! `healthy` (or the kill switch holds serve down, or a supervised command has no health
//! probe), `STATUS=...` at each change, and `WATCHDOG=1` at half of `WATCHDOG_USEC`, the
//! latter only while the actor answers.
//!
//! Records go to `watchdog.log` as JSON lines in the schema of serve's log, the event
//! name as the message (`serve.started`, `serve.exited`, `grace.restart.success`,
//! `grace.restart.failed`, `grace.kill_switch`, ...), the file rotated as `[logging]`
//! says; the watchdog publishes nothing on the bus, which lives in serve.

mod actor;
mod config;
mod error;
mod events;
mod handle;
pub mod incident_record;
pub mod log_files;
pub mod log_filter;
pub mod logs;
pub mod policy;
mod port;
mod probe;
mod process;
mod recovery;
mod run;
mod sd_notify;
pub mod status;
mod supervise;

pub use config::WatchdogConfig;
pub use error::WatchdogError;
pub use events::{EventLog, Level};
pub use handle::{Snapshot, WatchdogHandle};
pub use port::{
    decide_port, heal_port_conflict, listener_pid, port_facts, PortDecision, PortFacts,
};
pub use probe::health_addr;
pub use process::SUPERVISED_ENV;
pub use run::{run, serve_argv, WatchOptions};
pub use sd_notify::{watchdog_interval, SdNotify};

/// Set in the environment of a watchdog started in the background by `grace start`: it
/// then leaves the caller's session (setsid) before anything else.
pub const DETACH_ENV: &str = "GRACE_WATCHDOG_DETACH";

/// Stops a process that is not our child (a serve left by a killed watchdog, a stale
/// serve holding a port): SIGTERM and SIGCONT to its process group `pgid` (or to `pid`
/// alone when `pgid` is 0), SIGKILL after `timeout`. Returns whether it is gone.
pub async fn stop_process(pid: u32, pgid: i32, timeout: std::time::Duration) -> bool {
    process::stop_foreign(pid, pgid, timeout).await
}

/// The live processes a watchdog of `paths` started, with their descendants (everything
/// carrying [`SUPERVISED_ENV`] for this state directory), whichever watchdog started them.
pub fn supervised_processes(paths: &crate::state::StatePaths) -> Vec<u32> {
    let root = paths.root();
    let mark = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    process::with_env(SUPERVISED_ENV, mark.as_os_str().as_encoded_bytes())
}
