//! Exclusive locks on files of the state directory (`serve.lock`, `watchdog.lock`):
//! flock(2) locks held for the life of the process, so the kernel releases them when the
//! process dies, however it dies.
//!
//! The holder writes its pid into the lock file, and the holder of a lock can be read
//! from `/proc/locks` without taking the lock, so a refused start names the process in
//! the way.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::StateError;

/// An exclusive lock on a file, released when dropped or when the process exits.
#[derive(Debug)]
pub struct StateLock {
    file: Flock<File>,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `path` without waiting; `what` names the holder in the error
    /// ("a watchdog", "a serve"). Writes our pid into the file.
    pub fn acquire(path: &Path, what: &str) -> Result<StateLock, StateError> {
        let file = open(path)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(StateError::Locked {
                    what: what.to_owned(),
                    path: path.to_path_buf(),
                    holder: holder(path),
                })
            }
            Err((_, e)) => return Err(StateError::io(path, "lock", e.into())),
        };
        let pid = format!("{}\n", std::process::id());
        let w = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(pid.as_bytes())
        };
        w(&mut lock).map_err(|e| StateError::io(path, "write pid into lock", e))?;
        Ok(StateLock {
            file: lock,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock on `path`, waiting for the current holder to release it. For
    /// short critical sections such as read-modify-write of `state.json`.
    pub fn wait(path: &Path) -> Result<StateLock, StateError> {
        let file = open(path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| StateError::io(path, "lock", e.into()))?;
        Ok(StateLock {
            file: lock,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn open(path: &Path) -> Result<File, StateError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StateError::io(dir, "create directory", e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StateError::io(path, "open lock file", e))
}

/// The pid of the process holding the flock on `path`, or `None` when it is free (or
/// the file does not exist). Does not take the lock, so it never disturbs a holder or a
/// process about to take it.
pub fn holder(path: &Path) -> Option<u32> {
    let ino = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let from_proc = holder_in_proc_locks(&locks, ino);
    from_proc?;
    // Prefer the pid the holder wrote: /proc/locks names the process that called flock,
    // which differs only if the descriptor was inherited.
    let mut s = String::new();
    let written = File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .ok()
        .and_then(|_| s.trim().parse::<u32>().ok());
    written.or(from_proc)
}

/// Whether the flock on `path` is held by some process.
pub fn is_held(path: &Path) -> bool {
    holder(path).is_some()
}

/// Finds the holder of a FLOCK on inode `ino` in the text of `/proc/locks`.
fn holder_in_proc_locks(text: &str, ino: u64) -> Option<u32> {
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" after "1:".
        if f.len() < 6 || f[1] != "FLOCK" {
            continue;
        }
        let Some(file_ino) = f[5].rsplit(':').next().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        if file_ino == ino {
            return f[4].parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_names_the_holder() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("serve.lock");
        let l = StateLock::acquire(&p, "a serve").expect("first");
        assert_eq!(holder(&p), Some(std::process::id()));
        let err = StateLock::acquire(&p, "a serve").expect_err("second must fail");
        let msg = err.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains("a serve"), "{msg}");
        drop(l);
        assert_eq!(holder(&p), None);
        StateLock::acquire(&p, "a serve").expect("free again");
    }

    #[test]
    fn parses_proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 4321 fd:01:777 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 99 fd:01:777 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 55 00:2a:778 0 EOF\n";
        assert_eq!(holder_in_proc_locks(text, 777), Some(4321));
        assert_eq!(holder_in_proc_locks(text, 778), None);
    }
}
