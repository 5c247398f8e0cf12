//! The handle to a running watchdog actor: what signals (and tests) ask of it.

use tokio::sync::{mpsc, oneshot};

/// A message to the watchdog actor.
#[derive(Debug)]
pub(crate) enum Control {
    /// Re-read `state.json` (the kill switch changed).
    Reload,
    /// Stop serve gracefully and start it again (`grace restart`).
    RestartServe(oneshot::Sender<()>),
    /// Stop serve gracefully and end the watchdog.
    Shutdown(oneshot::Sender<()>),
    /// Report where the watchdog stands.
    Snapshot(oneshot::Sender<Snapshot>),
}

/// Where a watchdog stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `running`, `waiting`, `paused` or `stopped`.
    pub phase: &'static str,
    /// The serve process, when one runs.
    pub serve_pid: Option<u32>,
    /// Whether the running serve answered `GET /health` with 200 since it started.
    pub serve_ready: bool,
    /// Failed starts in a row.
    pub failures: u32,
    /// Restarts of serve, ever (persisted in `state.json`).
    pub restart_count: u64,
    /// The kill switch as last read.
    pub manual_shutdown: bool,
}

/// A cloneable handle to the watchdog actor.
#[derive(Debug, Clone)]
pub struct WatchdogHandle {
    pub(crate) tx: mpsc::Sender<Control>,
}

impl WatchdogHandle {
    /// Asks the watchdog to re-read the kill switch.
    pub async fn reload(&self) {
        let _ = self.tx.send(Control::Reload).await;
    }

    /// Restarts serve (graceful stop, then start); returns once the new one is started.
    pub async fn restart_serve(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Control::RestartServe(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops serve gracefully and ends the watchdog; returns once serve is down.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Control::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Where the watchdog stands; `None` once it has ended.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Control::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }
}
