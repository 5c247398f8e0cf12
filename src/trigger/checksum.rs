//! SHA-256 of watched files, with a cache keyed by each file's metadata so that large
//! files (model weights) are only read again when they change, and what a failed read
//! means ([`classify_read_error`]): only "not found" says the file is gone.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What a failed read of a watched file says about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// It is not there (`NotFound`): removed.
    Missing,
    /// It may well be there, but could not be read now (too many open files, permission
    /// denied, an I/O error, a directory in its place): this says nothing about its
    /// content, so it is neither drift nor corruption. The error's text.
    Unreadable(String),
}

/// Classifies a read error: `NotFound` is [`ReadFailure::Missing`]; every other error
/// (EMFILE, ENFILE, EACCES, EIO, EISDIR, ...) is [`ReadFailure::Unreadable`].
pub fn classify_read_error(e: &std::io::Error) -> ReadFailure {
    match e.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::Missing,
        _ => ReadFailure::Unreadable(e.to_string()),
    }
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What identifies one version of a file without reading it: any write changes its
/// size, modification time or change time (which cannot be set back by a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    Stamp {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        ino: m.ino(),
    }
}

/// Digests by path, recomputed only when a file's metadata changed.
#[derive(Debug, Default)]
pub struct HashCache {
    entries: HashMap<PathBuf, (Stamp, String)>,
    /// Files read (hashed) since creation.
    pub hashed: u64,
}

impl HashCache {
    /// The digest of `path`.
    pub fn digest(&mut self, path: &Path) -> std::io::Result<String> {
        let m = std::fs::metadata(path)?;
        let s = stamp(&m);
        if let Some((old, d)) = self.entries.get(path) {
            if *old == s {
                return Ok(d.clone());
            }
        }
        let d = sha256_file(path)?;
        self.hashed += 1;
        self.entries.insert(path.to_path_buf(), (s, d.clone()));
        Ok(d)
    }

    /// Forgets files not in `keep`.
    pub fn retain(&mut self, keep: &BTreeSet<PathBuf>) {
        self.entries.retain(|p, _| keep.contains(p));
    }
}

/// The regular files matching any of `patterns` (glob syntax; relative patterns from
/// the working directory).
pub fn expand(patterns: &[String]) -> Result<BTreeSet<PathBuf>, glob::PatternError> {
    let mut out = BTreeSet::new();
    for p in patterns {
        for path in glob::glob(p)?.flatten() {
            if path.is_file() {
                out.insert(path);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_content_changes() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.yaml");
        std::fs::write(&p, b"abc").expect("write");
        let mut c = HashCache::default();
        let one = c.digest(&p).expect("digest");
        assert_eq!(
            one,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(c.digest(&p).expect("digest"), one);
        assert_eq!(c.hashed, 1, "an unchanged file is not read again");
        std::fs::write(&p, b"abd").expect("write");
        assert_ne!(c.digest(&p).expect("digest"), one);
    }

    #[test]
    fn only_not_found_means_missing() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            classify_read_error(&Error::from(ErrorKind::NotFound)),
            ReadFailure::Missing
        );
        assert_eq!(
            classify_read_error(&Error::from_raw_os_error(libc::ENOENT)),
            ReadFailure::Missing
        );
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::EACCES,
            libc::EIO,
            libc::EISDIR,
        ] {
            let e = Error::from_raw_os_error(errno);
            assert_eq!(
                classify_read_error(&e),
                ReadFailure::Unreadable(e.to_string()),
                "errno {errno}"
            );
        }
        let ReadFailure::Unreadable(text) =
            classify_read_error(&Error::from_raw_os_error(libc::EMFILE))
        else {
            panic!("EMFILE is not missing");
        };
        assert!(text.contains("os error 24"), "{text}");
    }

    #[test]
    fn a_directory_in_place_of_a_file_is_unreadable_not_missing() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("grace.toml");
        std::fs::create_dir(&p).expect("mkdir");
        let e = HashCache::default().digest(&p).expect_err("a directory");
        assert!(matches!(
            classify_read_error(&e),
            ReadFailure::Unreadable(_)
        ));
        let gone = HashCache::default()
            .digest(&d.path().join("gone.toml"))
            .expect_err("missing");
        assert_eq!(classify_read_error(&gone), ReadFailure::Missing);
    }

    #[test]
    fn globs_expand_to_regular_files() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("a.yaml"), b"").expect("write");
        std::fs::write(d.path().join("b.txt"), b"").expect("write");
        std::fs::create_dir(d.path().join("c.yaml")).expect("mkdir");
        let pat = format!("{}/*.yaml", d.path().display());
        let files = expand(&[pat]).expect("pattern");
        assert_eq!(files.len(), 1);
        assert!(expand(&["[".to_owned()]).is_err());
    }
}
