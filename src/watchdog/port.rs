//! Network healing: when serve's port is taken, who holds it and what to do about it.
//!
//! A stale serve of the same state directory (one that lost its claim to it: it no
//! longer holds `serve.lock`, or the caller holds it and so is its successor) is stopped
//! and the port bound again. Anything else is foreign: serve binds a free port instead
//! and records the real one in `serve.json`, which the watchdog and the CLI read. Serve
//! records the incident (`failure_mode: port_in_use`) with its MTTR.

use std::path::Path;

use crate::state::{lock_holder, ServeInfo, StatePaths};

/// What to do about a taken port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortDecision {
    /// A stale serve of this state directory holds it: stop it (see
    /// [`super::stop_process`]) and bind the port again.
    StopStale {
        /// The stale serve.
        pid: u32,
        /// Its process group.
        pgid: i32,
    },
    /// The live serve of this state directory holds it (and `serve.lock`): this process
    /// must not run a second serve.
    HeldByLiveServe {
        /// The live serve.
        pid: u32,
    },
    /// A foreign process holds it (or the holder cannot be seen): bind a free port
    /// instead and record it in `serve.json`.
    UseFreePort {
        /// The holder, when it could be found.
        holder: Option<u32>,
    },
}

/// What is known about the holder of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortFacts {
    /// The process listening on the port, if visible.
    pub holder: Option<u32>,
    /// Its process group.
    pub holder_pgid: i32,
    /// It is the caller itself.
    pub holder_is_self: bool,
    /// It is a `grace serve` of this state directory (named by `serve.json` or by its
    /// command line).
    pub holder_is_our_serve: bool,
    /// It holds `serve.lock`.
    pub holder_holds_lock: bool,
    /// The caller holds `serve.lock`.
    pub caller_holds_lock: bool,
}

/// The decision for a set of facts.
pub fn decide_port(f: &PortFacts) -> PortDecision {
    match f.holder {
        Some(pid) if !f.holder_is_self && f.holder_is_our_serve => {
            if !f.holder_holds_lock || f.caller_holds_lock {
                PortDecision::StopStale {
                    pid,
                    pgid: f.holder_pgid,
                }
            } else {
                PortDecision::HeldByLiveServe { pid }
            }
        }
        holder => PortDecision::UseFreePort { holder },
    }
}

/// Decides what to do about `port` being taken, for a serve of `paths` (the caller).
pub fn heal_port_conflict(paths: &StatePaths, port: u16) -> PortDecision {
    decide_port(&port_facts(paths, port))
}

/// Gathers the facts about `port`'s holder.
pub fn port_facts(paths: &StatePaths, port: u16) -> PortFacts {
    let me = std::process::id();
    let Some(holder) = listener_pid(port) else {
        return PortFacts::default();
    };
    let lock = lock_holder(&paths.serve_lock());
    let named = ServeInfo::read(paths)
        .ok()
        .flatten()
        .is_some_and(|i| i.pid == holder);
    PortFacts {
        holder: Some(holder),
        holder_pgid: super::process::stat(holder).map(|s| s.pgrp).unwrap_or(0),
        holder_is_self: holder == me,
        holder_is_our_serve: (named && is_grace(holder))
            || super::process::is_serve_of(holder, paths.root()),
        holder_holds_lock: lock == Some(holder),
        caller_holds_lock: lock == Some(me),
    }
}

fn is_grace(pid: u32) -> bool {
    super::process::cmdline(pid).is_some_and(|argv| argv.iter().any(|a| a == "serve"))
}

/// The pid of a process listening on TCP `port` (IPv4 or IPv6), from `/proc/net/tcp*`
/// and the socket links in `/proc/<pid>/fd`. `None` when none is visible (for
/// instance, another user's process).
pub fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// The inodes of sockets listening on `port` in the text of `/proc/net/tcp{,6}`.
fn listening_inodes(text: &str, port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "0A" {
            continue; // 0A = LISTEN
        }
        let p = f[1]
            .rsplit(':')
            .next()
            .and_then(|h| u16::from_str_radix(h, 16).ok());
        if p == Some(port) {
            if let Ok(ino) = f[9].parse::<u64>() {
                out.push(ino);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let ours = PortFacts {
            holder: Some(10),
            holder_pgid: 10,
            holder_is_our_serve: true,
            ..PortFacts::default()
        };
        assert_eq!(
            decide_port(&ours),
            PortDecision::StopStale { pid: 10, pgid: 10 }
        );
        let live = PortFacts {
            holder_holds_lock: true,
            ..ours
        };
        assert_eq!(
            decide_port(&live),
            PortDecision::HeldByLiveServe { pid: 10 }
        );
        let successor = PortFacts {
            caller_holds_lock: true,
            ..live
        };
        assert_eq!(
            decide_port(&successor),
            PortDecision::StopStale { pid: 10, pgid: 10 }
        );
        let foreign = PortFacts {
            holder_is_our_serve: false,
            ..ours
        };
        assert_eq!(
            decide_port(&foreign),
            PortDecision::UseFreePort { holder: Some(10) }
        );
        assert_eq!(
            decide_port(&PortFacts::default()),
            PortDecision::UseFreePort { holder: None }
        );
    }

    #[test]
    fn parses_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(text, 8080), vec![4242]);
        assert!(listening_inodes(text, 8081).is_empty());
    }

    #[test]
    fn finds_a_foreign_listener_in_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        let d = tempfile::tempdir().expect("tempdir");
        let f = port_facts(&StatePaths::new(d.path()), port);
        assert!(f.holder_is_self && !f.holder_is_our_serve);
    }
}
