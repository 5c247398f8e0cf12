//! The files of one log: the live file and the rotated ones beside it
//! (`grace.jsonl.1`, `grace.jsonl.2026-01-31`, ...), reading them newest line first,
//! and following the live file across rotations.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Compressed rotations are not read.
const COMPRESSED: [&str; 4] = ["gz", "xz", "zst", "bz2"];

/// The files of the log `live`, oldest first, `live` last (when it exists): every
/// regular file named `<live's name>.<suffix>` beside it, ordered by modification
/// time, then by numeric suffix (a larger number is older).
pub fn log_files(live: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut rotated: Vec<(std::time::SystemTime, std::cmp::Reverse<u64>, PathBuf)> =
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().to_str()?.to_owned();
                let suffix = file.strip_prefix(&prefix)?;
                let ext = suffix.rsplit('.').next().unwrap_or(suffix);
                if suffix.is_empty() || COMPRESSED.contains(&ext) {
                    return None;
                }
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let n = suffix.parse::<u64>().unwrap_or(0);
                Some((meta.modified().ok()?, std::cmp::Reverse(n), e.path()))
            })
            .collect();
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, _, p)| p).collect();
    if live.is_file() {
        files.push(live.to_path_buf());
    }
    files
}

/// The lines of a file, last first, read backwards in chunks (a long log is never read
/// whole to show its end).
pub struct LinesBackwards {
    file: File,
    /// Bytes of the file not read yet: `[0, pos)`.
    pos: u64,
    /// Bytes read but not yet split off as lines (the start of the file's unread part
    /// ends the line at their end).
    carry: Vec<u8>,
    done: bool,
}

impl LinesBackwards {
    const CHUNK: u64 = 64 * 1024;

    /// Reads `path` from its current end.
    pub fn open(path: &Path) -> std::io::Result<LinesBackwards> {
        let file = File::open(path)?;
        let pos = file.metadata()?.len();
        Ok(LinesBackwards {
            file,
            pos,
            carry: Vec::new(),
            done: false,
        })
    }

    fn take_line(&mut self, from: usize) -> String {
        let line = self.carry.split_off(from);
        String::from_utf8_lossy(&line)
            .trim_end_matches(['\n', '\r'])
            .to_owned()
    }
}

impl Iterator for LinesBackwards {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if self.done {
                return None;
            }
            // The carry holds the end of the file's unread part; a newline in it
            // (other than one that ends it) starts the last complete line.
            let body = self.carry.strip_suffix(b"\n").unwrap_or(&self.carry);
            if let Some(nl) = body.iter().rposition(|b| *b == b'\n') {
                let line = self.take_line(nl + 1);
                if line.is_empty() {
                    continue;
                }
                return Some(line);
            }
            if self.pos == 0 {
                self.done = true;
                let line = self.take_line(0);
                return (!line.is_empty()).then_some(line);
            }
            let start = self.pos.saturating_sub(Self::CHUNK);
            let mut chunk = vec![0; (self.pos - start) as usize];
            if self.file.seek(SeekFrom::Start(start)).is_err()
                || self.file.read_exact(&mut chunk).is_err()
            {
                self.done = true;
                return None;
            }
            self.pos = start;
            chunk.extend_from_slice(&self.carry);
            self.carry = chunk;
        }
    }
}

/// A log followed as it grows: its open file, read up to `pos`, and a line not yet
/// complete.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    partial: String,
}

impl Follower {
    /// Starts at the current end of the live file `path` (at its start once it appears).
    pub fn at_end(path: PathBuf) -> Follower {
        let file = File::open(&path).ok();
        let pos = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Follower {
            path,
            file,
            pos,
            partial: String::new(),
        }
    }

    /// Complete lines appended since the last call. A rotation (the path names another
    /// file now) is followed: the old file is read to its end, then the new one from its
    /// start; a file truncated in place is read again from its start.
    pub fn read_new(&mut self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        for _ in 0..2 {
            if let Some(f) = self.file.as_mut() {
                let len = f.metadata().map_or(0, |m| m.len());
                if len < self.pos {
                    self.pos = 0;
                    self.partial.clear();
                }
                let mut buf = Vec::new();
                if f.seek(SeekFrom::Start(self.pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
                    self.pos += buf.len() as u64;
                    self.partial.push_str(&String::from_utf8_lossy(&buf));
                }
                while let Some(at) = self.partial.find('\n') {
                    let line: String = self.partial.drain(..=at).collect();
                    let line = line.trim_end();
                    if !line.is_empty() {
                        out.push(line.to_owned());
                    }
                }
            }
            let open_ino = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| m.ino());
            let live_ino = std::fs::metadata(&self.path).ok().map(|m| m.ino());
            if live_ino.is_none() || live_ino == open_ino {
                break;
            }
            // Rotated (or created): the rest of the old file is read; now the new one.
            self.file = File::open(&self.path).ok();
            self.pos = 0;
            self.partial.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_last_first_across_chunks() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("log");
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
            .collect();
        std::fs::write(&p, lines.join("\n") + "\n").expect("write");
        let back: Vec<String> = LinesBackwards::open(&p).expect("open").collect();
        let mut expected = lines.clone();
        expected.reverse();
        assert_eq!(back, expected);
        std::fs::write(&p, "a\n\nb").expect("write");
        let back: Vec<String> = LinesBackwards::open(&p).expect("open").collect();
        assert_eq!(back, ["b", "a"], "no final newline, blank lines skipped");
        std::fs::write(&p, "").expect("write");
        assert_eq!(LinesBackwards::open(&p).expect("open").count(), 0);
    }

    #[test]
    fn finds_rotated_files_oldest_first_and_skips_compressed_ones() {
        let d = tempfile::tempdir().expect("tempdir");
        let live = d.path().join("grace.jsonl");
        let t = |s: u64| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        for (name, at) in [
            ("grace.jsonl.2", 100),
            ("grace.jsonl.1", 200),
            ("grace.jsonl.3.gz", 50),
            ("grace.jsonl", 300),
            ("other.jsonl.1", 250),
        ] {
            let f = File::create(d.path().join(name)).expect("create");
            f.set_modified(t(at)).expect("mtime");
        }
        // Same modification time: the number orders them.
        File::create(d.path().join("grace.jsonl.4"))
            .and_then(|f| f.set_modified(t(100)))
            .expect("create");
        let names: Vec<String> = log_files(&live)
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "grace.jsonl.4",
                "grace.jsonl.2",
                "grace.jsonl.1",
                "grace.jsonl"
            ]
        );
    }
}
