//! Reading `/proc` for containment: each process's parent, process group, session,
//! state and start time, its children, and marks in its environment.

/// The fields of `/proc/<pid>/stat` containment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// The process.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its process group.
    pub pgrp: i32,
    /// Its session.
    pub sid: i32,
    /// R, S, D, T, Z, ...
    pub state: char,
    /// Start time in clock ticks since boot (tells a reused pid apart).
    pub start: u64,
}

impl Proc {
    /// Whether it has exited (a zombie waiting to be reaped, or being reaped).
    pub fn zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses the text of `/proc/<pid>/stat`.
pub fn parse(pid: u32, text: &str) -> Option<Proc> {
    // The command name (field 2) may hold spaces and parentheses: cut at the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(pid, &text)
}

/// Every process in `/proc`.
pub fn all() -> Vec<Proc> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(stat)
        .collect()
}

/// The children of `pid` (from every thread's `children` list, else a scan of `/proc`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut any = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                any = true;
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    if !any {
        out = all()
            .into_iter()
            .filter(|p| p.ppid == pid)
            .map(|p| p.pid)
            .collect();
    }
    out
}

fn environ(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default()
}

/// Whether the environment of `pid` holds exactly `key=value` (`kv`).
pub fn env_has(pid: u32, kv: &str) -> bool {
    environ(pid).split(|b| *b == 0).any(|e| e == kv.as_bytes())
}

/// Whether the environment of `pid` holds an entry starting with `prefix`.
pub fn env_has_prefix(pid: u32, prefix: &str) -> bool {
    environ(pid)
        .split(|b| *b == 0)
        .any(|e| e.starts_with(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names_and_the_session() {
        let p = parse(
            42,
            "42 (a b) c)) S 7 40 39 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0",
        )
        .expect("parse");
        assert_eq!(
            p,
            Proc {
                pid: 42,
                ppid: 7,
                pgrp: 40,
                sid: 39,
                state: 'S',
                start: 98765
            }
        );
        assert!(!p.zombie());
    }

    #[test]
    fn this_process_and_its_environment_are_visible() {
        let me = std::process::id();
        assert!(all().iter().any(|p| p.pid == me));
        assert!(env_has_prefix(me, "PATH="));
        assert!(!env_has(me, "PATH=\u{1}"));
    }
}
