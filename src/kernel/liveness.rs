//! What the kernels' actors tell the heartbeat monitor and ticker, without a message:
//! kernels that became busy while unwatched, and changes of which kernels tick.
//!
//! A kernel hands itself over only when it goes from unwatched to watched
//! ([`KernelStatus::begin_handling`]); the monitor keeps watching it while it stays
//! active, so a kernel that handles messages steadily hands itself over once, and an
//! idle one never.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::status::KernelStatus;

/// The hand-off from kernel actors to the heartbeat monitor and ticker.
#[derive(Default)]
pub struct Liveness {
    busy: Mutex<Vec<Arc<KernelStatus>>>,
    ticking_generation: AtomicU64,
}

impl Liveness {
    /// Hands `status`, busy and unwatched, to the monitor.
    pub fn push_busy(&self, status: &Arc<KernelStatus>) {
        self.busy.lock().push(status.clone());
    }

    /// Takes every kernel handed over since the last call into `into` (emptied first;
    /// its capacity is reused).
    pub fn drain_busy_into(&self, into: &mut Vec<Arc<KernelStatus>>) {
        into.clear();
        std::mem::swap(&mut *self.busy.lock(), into);
    }

    /// Notes that a kernel started or stopped ticking ([`KernelStatus::set_ticks`]).
    pub fn ticking_changed(&self) {
        self.ticking_generation.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever a kernel started or stopped ticking: with the registry's
    /// generation, tells the ticker and the monitor when to rebuild their lists.
    pub fn ticking_generation(&self) -> u64 {
        self.ticking_generation.load(Ordering::Acquire)
    }
}
