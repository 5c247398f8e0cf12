//! Group commit: many writers, few fsyncs.
//!
//! A writer takes a ticket for each write it made (in write order) and may then wait
//! until its ticket is durable. The first waiter becomes the leader: it fsyncs everything
//! written so far, with no lock held, while later writers keep writing; the waiters its
//! fsync covered return together, and the rest elect the next leader. Under the `group`
//! policy a background thread also fsyncs every interval, so plain appends become
//! durable within that bound without anyone waiting.
//!
//! An fsync error is sticky: after a failed fsync the kernel may have dropped the dirty
//! pages, so no later fsync can prove the earlier writes durable. Every later wait fails
//! with the first error, and the operator has to restart.

use std::fs::File;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::config::FsyncPolicy;

#[derive(Default)]
struct State {
    written: u64,
    synced: u64,
    syncing: bool,
    failed: Option<String>,
    fsyncs: u64,
}

/// Tracks which writes of one file are durable, and fsyncs it.
pub(crate) struct Syncer {
    /// The file fsyncs go to; replaced when the log moves on to a new file (a new
    /// segment), once the old one is durable.
    file: Mutex<Arc<File>>,
    state: Mutex<State>,
    cv: Condvar,
    // Dropping the sender stops the flusher thread.
    _stop: mpsc::Sender<()>,
}

impl Syncer {
    /// A syncer for `file` (a handle to the file written elsewhere). Under
    /// [`FsyncPolicy::Group`] a flusher thread fsyncs every `interval`; it stops when the
    /// syncer is dropped.
    pub(crate) fn new(file: File, policy: FsyncPolicy, interval: Duration) -> Arc<Syncer> {
        let (tx, rx) = mpsc::channel::<()>();
        let s = Arc::new(Syncer {
            file: Mutex::new(Arc::new(file)),
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            _stop: tx,
        });
        if policy == FsyncPolicy::Group {
            let weak = Arc::downgrade(&s);
            let interval = interval.max(Duration::from_millis(1));
            let spawned = std::thread::Builder::new()
                .name("grace-fsync".into())
                .spawn(move || flusher(weak, rx, interval));
            if let Err(e) = spawned {
                // Without the flusher, writes still reach the OS and every durable call
                // still fsyncs; only the bound on unsynced time is lost.
                tracing::error!(error = %e, "cannot start the group-commit flusher thread");
            }
        }
        s
    }

    /// From now on fsyncs go to `file`. Call once every write to the old file is
    /// durable (fsynced by the caller), with the writers' lock held.
    pub(crate) fn replace_file(&self, file: File) {
        *self.file.lock() = Arc::new(file);
    }

    /// Records one more completed write; returns its ticket. Call it in write order.
    pub(crate) fn note_write(&self) -> u64 {
        let mut st = self.state.lock();
        st.written += 1;
        st.written
    }

    /// Number of fsyncs done so far.
    pub(crate) fn fsyncs(&self) -> u64 {
        self.state.lock().fsyncs
    }

    /// Waits until the write with `ticket` is on disk, fsyncing if no one else does.
    pub(crate) fn sync_to(&self, ticket: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(io::Error::other(format!(
                    "an earlier fsync failed ({e}); writes since then may be lost; restart grace"
                )));
            }
            if st.synced >= ticket {
                return Ok(());
            }
            if st.syncing {
                self.cv.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let target = st.written;
            drop(st);
            let file = self.file.lock().clone();
            let r = file.sync_data();
            st = self.state.lock();
            st.syncing = false;
            st.fsyncs += 1;
            match r {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => {
                    tracing::error!(error = %e, "fsync failed");
                    st.failed = Some(e.to_string());
                }
            }
            self.cv.notify_all();
        }
    }

    /// Makes every write noted so far durable.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        let t = self.state.lock().written;
        self.sync_to(t)
    }

    fn pending(&self) -> bool {
        let st = self.state.lock();
        st.written > st.synced && st.failed.is_none()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if self.pending() {
            let _ = self.file.lock().sync_data();
        }
    }
}

fn flusher(weak: Weak<Syncer>, stop: mpsc::Receiver<()>, interval: Duration) {
    loop {
        match stop.recv_timeout(interval) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(s) = weak.upgrade() else { return };
        if s.pending() {
            let _ = s.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn concurrent_waiters_share_fsyncs() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut f = File::create(d.path().join("f")).expect("create");
        let s = Syncer::new(
            f.try_clone().expect("clone"),
            FsyncPolicy::Always,
            Duration::from_millis(50),
        );
        let lock = Mutex::new(());
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let t = {
                            let _g = lock.lock();
                            s.note_write()
                        };
                        s.sync_to(t).expect("sync");
                    }
                });
            }
        });
        f.write_all(b"x").expect("write");
        assert!(s.fsyncs() <= 400, "at most one fsync per write");
        assert!(s.fsyncs() >= 1);
    }

    #[test]
    fn the_flusher_syncs_without_waiters() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = File::create(d.path().join("f")).expect("create");
        let s = Syncer::new(f, FsyncPolicy::Group, Duration::from_millis(5));
        s.note_write();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while s.pending() {
            assert!(std::time::Instant::now() < deadline, "flusher never synced");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(s.fsyncs() >= 1);
    }
}
