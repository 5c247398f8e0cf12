//! A log file bounded in size and age: `grace.jsonl` (or `watchdog.log`) is rotated to
//! `grace.jsonl.1` before a record would take it past `max_file_size`, or once its first
//! record is older than `max_age`; older files shift to `.2`, `.3`, ... and those past
//! `max_files`, or whose newest record is older than `max_age`, are deleted.
//!
//! Records are whole lines: each is written with one `write` to a file opened for
//! appending, never split across two files. A line torn by a power loss (the file does
//! not end with a newline) is closed at open, so the next record starts a line of its
//! own and stays readable.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How big and how old a log may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The active file is rotated before a record would take it past this many bytes.
    pub max_size: u64,
    /// Rotated files kept (`.1` newest ... `.N` oldest); 0 keeps none.
    pub max_files: usize,
    /// Records older than this are not kept: the active file is rotated once its first
    /// record is this old, and a rotated file whose newest record is is deleted.
    pub max_age: Duration,
}

/// `path.n`: the `n`th rotated file (1 is the newest).
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The rotated files of `path` that exist, newest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect()
}

/// An append-only log file that rotates itself.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    size: u64,
    /// When the first record of the active file was written.
    started: SystemTime,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The time of the first record of the file, if it is a record.
fn first_record_time(path: &Path) -> Option<SystemTime> {
    let mut head = vec![0u8; 4096];
    let mut f = File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    let line = head[..n].split(|b| *b == b'\n').next()?;
    let r = super::Record::parse(std::str::from_utf8(line).ok()?)?;
    let t = chrono::DateTime::parse_from_rfc3339(&r.timestamp).ok()?;
    Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
}

impl RotatingFile {
    /// Opens (creating it and its directory) the log at `path`; closes a torn last line
    /// and deletes rotated files past the limits.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<RotatingFile> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let mut file = open_append(path)?;
        let size = file.metadata()?.len();
        if size > 0 {
            let mut last = [0u8; 1];
            let mut r = File::open(path)?;
            r.seek(SeekFrom::End(-1))?;
            r.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        let size = file.metadata()?.len();
        let started = if size == 0 {
            SystemTime::now()
        } else {
            first_record_time(path).unwrap_or_else(SystemTime::now)
        };
        let log = RotatingFile {
            path: path.to_path_buf(),
            rotation,
            file,
            size,
            started,
        };
        log.prune();
        Ok(log)
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn due(&self, add: u64) -> bool {
        if self.size == 0 {
            return false;
        }
        let old = SystemTime::now()
            .duration_since(self.started)
            .is_ok_and(|age| age >= self.rotation.max_age);
        self.size + add > self.rotation.max_size || old
    }

    /// Appends one record (or several whole lines), rotating first when it is due. A
    /// rotation that fails leaves the records in the active file; the error is returned
    /// only when the write itself fails.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.due(lines.len() as u64) {
            // A failed rotation (a full disk, a read-only directory) must not lose the
            // record: it goes to the active file, and the next record tries again.
            let _ = self.rotate();
        }
        if self.size == 0 {
            self.started = SystemTime::now();
        }
        self.file.write_all(lines)?;
        self.size += lines.len() as u64;
        Ok(())
    }

    /// Rotates now: `.n` to `.n+1` (dropping the last), the active file to `.1`, and a
    /// new active file.
    pub fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.max_files;
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, keep));
            for n in (1..keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.started = SystemTime::now();
        self.prune();
        Ok(())
    }

    /// Opens the log at `path` to hand its descriptor to another writer (a child
    /// process's stdout and stderr): rotated first when it is already past its size or
    /// age, as each record would be.
    pub fn handoff(path: &Path, rotation: Rotation) -> io::Result<File> {
        let mut log = RotatingFile::open(path, rotation)?;
        if log.due(0) {
            log.rotate()?;
        }
        Ok(log.file)
    }

    /// Deletes rotated files past `max_files` or whose newest record is past `max_age`.
    fn prune(&self) {
        let now = SystemTime::now();
        for (i, p) in rotated_files(&self.path).into_iter().enumerate() {
            let too_old = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= self.rotation.max_age);
            if i >= self.rotation.max_files || too_old {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

impl Write for RotatingFile {
    /// `buf` is one or more whole records (the log writers hand over one record per
    /// call).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_closed_at_open() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("x.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"torn\":").expect("write");
        let mut f = RotatingFile::open(
            &p,
            Rotation {
                max_size: 1 << 20,
                max_files: 2,
                max_age: Duration::from_secs(3600),
            },
        )
        .expect("open");
        f.append(b"{\"b\":2}\n").expect("append");
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(text.lines().last(), Some("{\"b\":2}"));
        assert_eq!(text.lines().count(), 3);
    }

    fn policy(max_size: u64, max_files: usize, max_age: Duration) -> Rotation {
        Rotation {
            max_size,
            max_files,
            max_age,
        }
    }

    #[test]
    fn rotates_by_size_keeping_max_files_of_whole_lines() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("grace.jsonl");
        let mut f =
            RotatingFile::open(&p, policy(300, 2, Duration::from_secs(3600))).expect("open");
        for i in 0..60 {
            f.append(format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(30)).as_bytes())
                .expect("append");
        }
        assert_eq!(rotated_files(&p), vec![rotated(&p, 1), rotated(&p, 2)]);
        let mut seen = Vec::new();
        for file in [rotated(&p, 2), rotated(&p, 1), p.clone()] {
            let text = std::fs::read_to_string(&file).expect("read");
            assert!(text.len() <= 300, "{file:?}: {}", text.len());
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("whole line");
                seen.push(v["i"].as_u64().expect("i"));
            }
        }
        let first = seen[0];
        assert_eq!(
            seen,
            (first..60).collect::<Vec<_>>(),
            "the newest, in order"
        );

        // A rotated file whose newest record is past max_age goes at the next open.
        let old = SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(rotated(&p, 2))
            .and_then(|f| f.set_modified(old))
            .expect("age it");
        drop(f);
        RotatingFile::open(&p, policy(300, 2, Duration::from_secs(3600))).expect("reopen");
        assert_eq!(rotated_files(&p), vec![rotated(&p, 1)]);
    }

    #[test]
    fn an_active_file_whose_first_record_is_past_max_age_rotates() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("watchdog.log");
        let mut old = super::super::Record::now(
            super::super::Level::Info,
            "grace::watchdog",
            "watchdog.started",
            Default::default(),
        );
        old.timestamp = crate::time::rfc3339(crate::time::now() - chrono::Duration::days(2));
        std::fs::write(&p, old.json_line()).expect("write");
        let mut f =
            RotatingFile::open(&p, policy(1 << 20, 3, Duration::from_secs(86_400))).expect("open");
        f.append(b"{\"new\":true}\n").expect("append");
        let rotated_text = std::fs::read_to_string(rotated(&p, 1)).expect("rotated");
        assert!(rotated_text.contains("watchdog.started"));
        assert_eq!(
            std::fs::read_to_string(&p).expect("active"),
            "{\"new\":true}\n"
        );
    }
}
