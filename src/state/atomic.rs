//! Atomic file replacement: a reader sees the old content or the new, never a mix.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically: into a temporary file of a unique name in the
/// same directory, fsynced, renamed over `path`, and the directory fsynced so the
/// rename is durable. Any number of writers, in this process or others, may write the
/// same path at once: each has its own temporary file, the last rename wins, and a
/// reader sees one writer's whole content. A replaced file keeps its mode; a new one
/// gets `0666` less the umask, as `File::create` would.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let existing = fs::metadata(path).ok().map(|m| m.permissions());
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Some(p) = existing {
        tmp.as_file().set_permissions(p)?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On failure the temporary file is removed when the error (which owns it) drops.
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect()
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("state.json");
        atomic_write(&p, b"one").expect("write");
        atomic_write(&p, b"two").expect("write");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(names(d.path()).len(), 1, "{:?}", names(d.path()));
    }

    #[test]
    fn concurrent_writers_to_one_path_all_succeed_and_one_whole_content_wins() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("alert.json");
        let contents: Vec<Vec<u8>> = (0..16u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        let barrier = std::sync::Barrier::new(contents.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = contents
                .iter()
                .map(|c| {
                    let (p, barrier) = (&p, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..10)
                            .map(|_| atomic_write(p, c))
                            .collect::<io::Result<Vec<()>>>()
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .expect("writer thread")
                    .expect("every write succeeds");
            }
        });
        let got = fs::read(&p).expect("read");
        assert!(contents.contains(&got), "a torn or mixed file");
        assert_eq!(names(d.path()).len(), 1, "{:?}", names(d.path()));
    }

    #[test]
    fn a_replaced_file_keeps_its_mode() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("secret");
        fs::write(&p, b"old").expect("write");
        fs::set_permissions(&p, Permissions::from_mode(0o600)).expect("chmod");
        atomic_write(&p, b"new").expect("write");
        let mode = fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
