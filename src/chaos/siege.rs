//! Resource sieges run by the harness itself: busy threads, touched memory, a file that
//! fills a file system. Each is a guard; dropping it (at the end of the fault, on an
//! error, on a panic, on Ctrl-C) stops the threads, frees the memory, removes the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What a memory siege always leaves available on the host.
pub const MEMORY_RESERVE: u64 = 2 << 30;
/// What a disk siege always leaves available on its file system.
pub const DISK_RESERVE: u64 = 1 << 30;

/// Busy threads; stopped and joined on drop.
#[derive(Debug)]
pub struct CpuSiege {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CpuSiege {
    /// Starts `threads` threads that spin until the guard drops.
    pub fn start(threads: usize) -> std::io::Result<CpuSiege> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut siege = CpuSiege {
            stop: stop.clone(),
            threads: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let stop = stop.clone();
            let h = std::thread::Builder::new()
                .name(format!("chaos-cpu-{i}"))
                .spawn(move || {
                    let mut x: u64 = i as u64 + 1;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6364136223846793005).wrapping_add(1),
                            );
                        }
                    }
                })?;
            // A failed spawn drops `siege`, which stops the threads already started.
            siege.threads.push(h);
        }
        Ok(siege)
    }

    /// Threads running.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for CpuSiege {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// Memory allocated and written page by page, so it is resident; freed on drop.
#[derive(Debug)]
pub struct MemorySiege {
    block: Vec<u8>,
}

impl MemorySiege {
    /// Allocates and touches `mib` MiB; fails instead of aborting when the allocation
    /// cannot be made, and refuses to leave the host less than [`MEMORY_RESERVE`].
    pub fn start(mib: u64) -> std::io::Result<MemorySiege> {
        let wanted = mib.saturating_mul(1 << 20);
        if let Ok(host) = super::host::Usage::memory() {
            let available = host.usable.saturating_sub(host.used);
            if wanted > available.saturating_sub(MEMORY_RESERVE) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!(
                        "a memory siege of {mib} MiB would leave the host less than {} MiB available ({} MiB are): lower `mib`",
                        MEMORY_RESERVE >> 20,
                        available >> 20
                    ),
                ));
            }
        }
        let bytes = usize::try_from(wanted).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "memory siege too large")
        })?;
        let mut block = Vec::new();
        block.try_reserve_exact(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot allocate {mib} MiB: {e}"),
            )
        })?;
        block.resize(bytes, 0);
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        Ok(MemorySiege { block })
    }

    /// Allocates enough to bring the host's memory use (`/proc/meminfo`: total minus
    /// available) to `level` percent, at most `max_mib`; returns the siege and the
    /// bytes the level needed.
    pub fn to_level(level: f64, max_mib: u64) -> std::io::Result<(MemorySiege, u64)> {
        let mem = super::host::Usage::memory()?;
        let (used, available) = (mem.used, mem.usable.saturating_sub(mem.used));
        let wanted = disk_fill_bytes(used, available, level, u64::MAX);
        let bytes = wanted.min(max_mib.saturating_mul(1 << 20));
        Ok((MemorySiege::start(bytes.div_ceil(1 << 20))?, wanted))
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.block.len()
    }
}

/// How many bytes to add so that use reaches `level` percent, counted as `df` does for
/// a file system (used / (used + available)), capped at `max_bytes` and at what is
/// available. Memory is counted the same way (total − available is used).
pub fn disk_fill_bytes(used: u64, available: u64, level: f64, max_bytes: u64) -> u64 {
    let usable = used.saturating_add(available) as f64;
    let wanted = (usable * level / 100.0).ceil() - used as f64;
    if wanted <= 0.0 {
        return 0;
    }
    (wanted as u64).min(max_bytes).min(available)
}

/// A file filling a file system; removed on drop.
#[derive(Debug)]
pub struct DiskSiege {
    path: PathBuf,
    bytes: u64,
    wanted: u64,
}

impl DiskSiege {
    /// Creates a file in `dir` large enough to bring its file system to `level`
    /// percent, but no larger than `max_mib`, and leaving at least [`DISK_RESERVE`].
    pub fn start(dir: &Path, level: f64, max_mib: u64) -> std::io::Result<DiskSiege> {
        std::fs::create_dir_all(dir)?;
        let u = super::host::Usage::disk(dir)?;
        let available = u.usable.saturating_sub(u.used);
        let uncapped = disk_fill_bytes(u.used, available, level, u64::MAX);
        let cap = max_mib
            .saturating_mul(1 << 20)
            .min(available.saturating_sub(DISK_RESERVE));
        let bytes = disk_fill_bytes(u.used, available, level, cap);
        DiskSiege::create(dir, bytes, uncapped)
    }

    /// Creates a file of `mib` MiB in `dir`, or as much as leaves [`DISK_RESERVE`]
    /// free ([`DiskSiege::capped`] tells).
    pub fn of_size(dir: &Path, mib: u64) -> std::io::Result<DiskSiege> {
        std::fs::create_dir_all(dir)?;
        let u = super::host::Usage::disk(dir)?;
        let available = u.usable.saturating_sub(u.used);
        let wanted = mib.saturating_mul(1 << 20);
        let bytes = wanted.min(available.saturating_sub(DISK_RESERVE));
        DiskSiege::create(dir, bytes, wanted)
    }

    fn create(dir: &Path, bytes: u64, uncapped: u64) -> std::io::Result<DiskSiege> {
        let path = dir.join(format!(".grace-chaos-disk-siege-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        // From here the guard owns the file: any error below drops it and removes it.
        let siege = DiskSiege {
            path,
            bytes,
            wanted: uncapped,
        };
        if bytes > 0 {
            let len = libc::off_t::try_from(bytes).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "disk siege too large")
            })?;
            nix::fcntl::posix_fallocate(&file, 0, len).map_err(std::io::Error::from)?;
        }
        Ok(siege)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes it takes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the cap stopped it short of the level.
    pub fn capped(&self) -> bool {
        self.bytes < self.wanted
    }
}

impl Drop for DiskSiege {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_fill_reaches_the_level_and_respects_the_cap() {
        // 50 used + 50 available: 90 % needs 40 more.
        assert_eq!(disk_fill_bytes(50, 50, 90.0, u64::MAX), 40);
        assert_eq!(disk_fill_bytes(50, 50, 90.0, 10), 10);
        assert_eq!(disk_fill_bytes(95, 5, 90.0, u64::MAX), 0);
        assert_eq!(disk_fill_bytes(0, 100, 99.0, u64::MAX), 99);
    }

    #[test]
    fn cpu_siege_threads_stop_on_drop() {
        let s = CpuSiege::start(2).expect("start");
        assert_eq!(s.threads(), 2);
        drop(s);
    }

    #[test]
    fn memory_siege_holds_what_it_was_asked() {
        let s = MemorySiege::start(4).expect("alloc");
        assert_eq!(s.bytes(), 4 << 20);
    }
}
