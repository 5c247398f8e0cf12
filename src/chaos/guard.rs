//! Guards for the faults that change something outside the harness: a stopped process
//! (continued on drop), a held port (released on drop), a corrupted file (put back on
//! drop if the system did not restore it). And the pure corruption of bytes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

use super::scenario::CorruptMode;

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let raw = i32::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad pid"))?;
    kill(Pid::from_raw(raw), sig).map_err(std::io::Error::from)
}

/// Whether a process exists (it may be a zombie).
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .map(|raw| kill(Pid::from_raw(raw), None).is_ok())
        .unwrap_or(false)
}

/// A process stopped with SIGSTOP; SIGCONT on drop.
#[derive(Debug)]
pub struct Stopped {
    pid: u32,
}

impl Stopped {
    /// Stops `pid`.
    pub fn stop(pid: u32) -> std::io::Result<Stopped> {
        signal(pid, Signal::SIGSTOP)?;
        Ok(Stopped { pid })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // It may have been killed and replaced by its watchdog meanwhile; then there is
        // nothing to continue.
        let _ = signal(self.pid, Signal::SIGCONT);
    }
}

/// A port held by the harness; released on drop.
#[derive(Debug)]
pub struct PortHold {
    _listener: TcpListener,
}

impl PortHold {
    /// Binds `host:port`.
    pub fn bind(host: &str, port: u16) -> std::io::Result<PortHold> {
        let l = TcpListener::bind((host, port))?;
        Ok(PortHold { _listener: l })
    }
}

/// A corrupted file and its content from before; written back on drop if it still has
/// the corrupted content (the system did not restore it).
#[derive(Debug)]
pub struct Corrupted {
    path: PathBuf,
    original: Vec<u8>,
    corrupted: [u8; 32],
    disarmed: bool,
}

impl Corrupted {
    /// Corrupts `path` (`mode`, `bytes` flipped with `seed`).
    pub fn corrupt(
        path: &Path,
        mode: CorruptMode,
        bytes: usize,
        seed: u64,
    ) -> std::io::Result<Corrupted> {
        let original = std::fs::read(path)?;
        if original.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is empty: there is nothing to corrupt", path.display()),
            ));
        }
        let bad = corrupt_bytes(&original, mode, bytes, seed);
        // Written in place (not atomically): a corruption is what a torn write or a bad
        // disk leaves behind.
        std::fs::write(path, &bad)?;
        Ok(Corrupted {
            path: path.to_path_buf(),
            original,
            corrupted: Sha256::digest(&bad).into(),
            disarmed: false,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has its content from before the corruption.
    pub fn restored(&self) -> bool {
        std::fs::read(&self.path)
            .map(|now| now == self.original)
            .unwrap_or(false)
    }

    /// Puts the original back if the file still has the corrupted content (or is
    /// gone); returns whether the harness had to.
    pub fn undo(&mut self) -> std::io::Result<bool> {
        self.disarmed = true;
        let still_bad = match std::fs::read(&self.path) {
            Ok(now) => <[u8; 32]>::from(Sha256::digest(&now)) == self.corrupted,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if still_bad {
            crate::state::atomic_write(&self.path, &self.original)?;
        }
        Ok(still_bad)
    }
}

impl Drop for Corrupted {
    fn drop(&mut self) {
        if !self.disarmed {
            let _ = self.undo();
        }
    }
}

/// The corrupted form of `data`: `bytes` bytes inverted at offsets drawn from `seed`,
/// or the first half only. Always differs from `data` when `data` is not empty.
pub fn corrupt_bytes(data: &[u8], mode: CorruptMode, bytes: usize, seed: u64) -> Vec<u8> {
    match mode {
        CorruptMode::Truncate => data[..data.len() / 2].to_vec(),
        CorruptMode::Flip => {
            let mut out = data.to_vec();
            if out.is_empty() {
                return out;
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let n = bytes.clamp(1, out.len());
            // Distinct offsets, so that no byte is flipped twice back to itself.
            let mut offsets = rand::seq::index::sample(&mut rng, out.len(), n).into_vec();
            offsets.sort_unstable();
            for i in offsets {
                out[i] ^= 0xFF;
            }
            out
        }
    }
}

/// The files matching `pattern` (relative to `root` unless absolute); none when the
/// pattern is not a valid glob.
pub fn matches(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        root.join(pattern)
    };
    let Ok(entries) = glob::glob(&full.to_string_lossy()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect()
}

/// The newest file (by modification time) matching `pattern` under `root` (or
/// `pattern` itself when absolute).
pub fn newest_match(root: &Path, pattern: &str) -> Option<PathBuf> {
    matches(root, pattern)
        .into_iter()
        .filter_map(|p| {
            let m = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((m, p))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        .map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_seeded_distinct_and_always_change_the_data() {
        let data = vec![7u8; 100];
        let a = corrupt_bytes(&data, CorruptMode::Flip, 10, 42);
        let b = corrupt_bytes(&data, CorruptMode::Flip, 10, 42);
        assert_eq!(a, b);
        assert_eq!(a.iter().zip(&data).filter(|(x, y)| x != y).count(), 10);
        assert_ne!(corrupt_bytes(&[1], CorruptMode::Flip, 99, 1), vec![1]);
        assert_eq!(corrupt_bytes(&data, CorruptMode::Truncate, 0, 0).len(), 50);
    }
}
