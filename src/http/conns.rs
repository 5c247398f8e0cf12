//! The connection limit: at most `limit` connections are served at once. At the limit,
//! a new connection closes the oldest idle one (no request in progress: connected and
//! silent, sending headers slowly, or kept alive between requests), so that idle
//! connections can never lock out `/health`; when every connection is busy the new one
//! is answered 503 with a JSON body and closed. A connection younger than
//! [`EVICT_AFTER`] is not closed for another: its request may be on its way. The limit
//! is `[http] max_connections`, lowered at start to leave a reserve of descriptors
//! ([`effective_limit`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// The least of the descriptors kept free beyond those open at start and the
/// connections: files, pipes and sockets of the rest of serve, the connections being
/// turned away.
pub const MIN_RESERVE: u64 = 16;
/// How long a connection must have been open before it can be closed for a new one.
pub const EVICT_AFTER: Duration = Duration::from_millis(250);
/// Connections being answered 503 at once; past this they are closed without answer.
const REJECTING_MAX: usize = 16;
/// How long a turned-away connection is read (and discarded) after its 503, so that
/// the close does not reset it before the client reads the answer.
const LINGER: Duration = Duration::from_millis(500);

/// What `/metrics` shows of the connections.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicU64,
    in_progress: AtomicU64,
    limit: AtomicU64,
    rejected: AtomicU64,
    evicted: AtomicU64,
}

/// A plain copy of [`ConnStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ConnFigures {
    /// Open now.
    pub open: u64,
    /// Requests in progress now.
    pub in_progress: u64,
    /// The limit in force.
    pub limit: u64,
    /// Answered 503 at the limit.
    pub rejected: u64,
    /// Idle ones closed to make room.
    pub evicted: u64,
}

impl ConnStats {
    /// A plain copy.
    pub fn figures(&self) -> ConnFigures {
        ConnFigures {
            open: self.open.load(Ordering::Relaxed),
            in_progress: self.in_progress.load(Ordering::Relaxed),
            limit: self.limit.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }
}

/// The limit in force: `configured`, but leaving half the descriptors free when the
/// HTTP server starts (at least [`MIN_RESERVE`]) to the rest of serve, whose tree starts
/// after it; at least 1.
pub fn effective_limit(configured: usize, max_fds: u64, open_fds: u64) -> usize {
    let free = max_fds.saturating_sub(open_fds);
    let room = free.saturating_sub((free / 2).max(MIN_RESERVE)).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// This process's descriptor limit (soft) and descriptors open now.
///
/// sysinfo (the samplers of the resource trigger and of [`super::readings`]) keeps
/// `/proc/<pid>/stat` open for every process it follows, up to half the descriptor
/// limit, and raises the soft limit to the hard one the first time it looks: it is told
/// here to keep none open, so that the descriptors the connection limit counts on stay
/// free, and the limit read after it is the one in force from then on.
pub fn descriptors() -> (u64, u64) {
    sysinfo::set_open_files_limit(0);
    let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(u64::MAX, |(soft, _)| soft);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (max, open)
}

struct Entry {
    /// Requests in progress on the connection.
    busy: Arc<AtomicUsize>,
    opened: Instant,
    task: AbortHandle,
}

impl Entry {
    fn evictable(&self, now: Instant) -> bool {
        self.busy.load(Ordering::Relaxed) == 0 && now.duration_since(self.opened) >= EVICT_AFTER
    }
}

/// The open connections, oldest first.
pub(crate) struct Conns {
    limit: usize,
    stats: Arc<ConnStats>,
    table: Mutex<BTreeMap<u64, Entry>>,
    next: AtomicU64,
    rejecting: Arc<AtomicUsize>,
}

/// A connection's place in the table; dropping it (the connection ended, or its task
/// was aborted) frees it.
pub(crate) struct Slot {
    id: u64,
    conns: Arc<Conns>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.table.lock().remove(&self.id);
        self.conns.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conns {
    /// A table for `limit` connections, counted in `stats`.
    pub fn new(limit: usize, stats: Arc<ConnStats>) -> Arc<Conns> {
        stats.limit.store(limit as u64, Ordering::Relaxed);
        Arc::new(Conns {
            limit,
            stats,
            table: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            rejecting: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Admits a connection: `spawn` starts its task with its slot and its request
    /// tracker and returns the task's handle. At the limit the oldest idle connection is closed
    /// first; with none idle, `stream` is answered 503 and `spawn` is not called.
    pub fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        spawn: impl FnOnce(TcpStream, Slot, Requests) -> AbortHandle,
    ) {
        let mut table = self.table.lock();
        if table.len() >= self.limit {
            let now = Instant::now();
            let idle = table
                .iter()
                .find(|(_, e)| e.evictable(now))
                .map(|(id, _)| *id);
            match idle.and_then(|id| table.remove(&id)) {
                Some(e) => {
                    e.task.abort();
                    self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    drop(table);
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    self.reject(stream);
                    return;
                }
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            id,
            conns: self.clone(),
        };
        // Registered under the lock: a task that ends at once removes its entry only
        // after it was inserted.
        let requests = Requests {
            conn: busy.clone(),
            stats: self.stats.clone(),
        };
        let task = spawn(stream, slot, requests);
        let opened = Instant::now();
        table.insert(id, Entry { busy, opened, task });
    }

    /// Answers 503 and closes, off the accept loop, a bounded number at a time.
    fn reject(&self, mut stream: TcpStream) {
        if self.rejecting.fetch_add(1, Ordering::Relaxed) >= REJECTING_MAX {
            self.rejecting.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let answer = busy_answer(self.limit);
        let rejecting = self.rejecting.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                stream.write_all(&answer).await?;
                stream.shutdown().await?;
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<(), std::io::Error>(())
            })
            .await;
            rejecting.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The 503 a connection past the limit gets.
fn busy_answer(limit: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "error": format!("too many connections: serve is at its limit of {limit} and none is idle"),
        "hint": "retry shortly; if this is regular load, raise [http] max_connections and the descriptor limit (ulimit -n, LimitNOFILE=)",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Counts the requests in progress on one connection (and on them all).
#[derive(Clone)]
pub(crate) struct Requests {
    conn: Arc<AtomicUsize>,
    stats: Arc<ConnStats>,
}

impl Requests {
    /// One request in progress until the [`Busy`] is dropped.
    pub fn start(&self) -> Busy {
        self.conn.fetch_add(1, Ordering::Relaxed);
        self.stats.in_progress.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// Marks a connection busy while it exists: made when a request reaches the service,
/// dropped with the response body once written (or with the request, if abandoned).
pub(crate) struct Busy(Requests);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.conn.fetch_sub(1, Ordering::Relaxed);
        self.0.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its connection marked busy until it is written.
pub(crate) struct BusyBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl BusyBody {
    /// `inner`, holding `busy`.
    pub fn new(inner: axum::body::Body, busy: Busy) -> BusyBody {
        BusyBody { inner, _busy: busy }
    }
}

impl hyper::body::Body for BusyBody {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_stays_below_the_descriptor_limit() {
        assert_eq!(effective_limit(512, 4096, 40), 512);
        assert_eq!(effective_limit(512, 1024, 40), 492);
        assert_eq!(effective_limit(512, 256, 40), 108);
        assert_eq!(effective_limit(512, 64, 20), 22);
        assert_eq!(effective_limit(512, 64, 35), 29 - 16);
        assert_eq!(effective_limit(512, 50, 40), 1);
        let (max, open) = descriptors();
        assert!(open >= 3 && max >= open, "{max} {open}");
    }

    #[test]
    fn the_busy_answer_is_json_with_its_length() {
        let a = String::from_utf8(busy_answer(7)).expect("utf8");
        let (head, body) = a.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert!(v["error"].as_str().expect("error").contains("limit of 7"));
    }
}
