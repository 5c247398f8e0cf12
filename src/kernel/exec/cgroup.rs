//! cgroup v2 containment of exec kernels: finding this process's cgroup, whether it may
//! be written (a delegated subtree, systemd `Delegate=yes`, or root), one child cgroup
//! per kernel under `grace-<serve pid>/`, and ending one with `cgroup.kill` as systemd
//! does (then waiting for `cgroup.events` to say `populated 0`, then removing it).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup v2 hierarchy holds this process's cgroup, from `/proc/self/cgroup`
/// (the `0::<path>` line) and the `cgroup2` mount in `/proc/self/mountinfo`.
pub fn own_dir() -> Result<PathBuf, String> {
    dir_of("self")
}

/// The cgroup v2 directory of process `who` (`self` or a pid).
pub(crate) fn dir_of(who: &str) -> Result<PathBuf, String> {
    let cg = std::fs::read_to_string(format!("/proc/{who}/cgroup"))
        .map_err(|e| format!("cannot read /proc/{who}/cgroup: {e}"))?;
    let rel = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 entry in /proc/self/cgroup (cgroup v1 only)")?
        .to_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(mount)) = (f.get(3), f.get(4)) else {
            continue;
        };
        let rest = if *root == "/" {
            rel.as_str()
        } else if let Some(r) = rel.strip_prefix(root) {
            r
        } else {
            continue;
        };
        return Ok(Path::new(mount).join(rest.trim_start_matches('/')));
    }
    Err("no cgroup2 file system is mounted".to_owned())
}

/// The directory under which this serve puts its kernels' cgroups: `grace-<pid>` in its
/// own cgroup. Creating it is the writability test; a kernel without `cgroup.kill`
/// (older than Linux 5.14) does not count.
pub(crate) fn create_base() -> Result<PathBuf, String> {
    let own = own_dir()?;
    remove_stale(&own);
    let base = own.join(format!("grace-{}", std::process::id()));
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "{} is not writable ({e}); give Grace a delegated cgroup \
                 (systemd Delegate=yes)",
                own.display()
            ))
        }
    }
    if !base.join("cgroup.kill").exists() {
        let _ = std::fs::remove_dir(&base);
        return Err("cgroup.kill is missing (Linux older than 5.14)".to_owned());
    }
    Ok(base)
}

/// Ends and removes the kernel cgroups of serves that no longer run (`grace-<pid>`
/// beside ours, its pid gone): what a serve that died without a watchdog left.
fn remove_stale(own: &Path) {
    let Ok(rd) = std::fs::read_dir(own) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("grace-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        if populated(&dir) {
            tracing::warn!(cgroup = %dir.display(), "ending the kernels of a serve that died");
            let _ = kill(&dir);
            wait_empty(&dir, Duration::from_secs(1));
        }
        remove(&dir);
    }
}

/// Removes this process's base cgroup if no kernel cgroup is left in it (serve calls
/// this as it exits).
pub fn remove_base() {
    if let Ok(own) = own_dir() {
        let _ = std::fs::remove_dir(own.join(format!("grace-{}", std::process::id())));
    }
}

/// Creates the cgroup of one kernel start under `base`; the name keeps only characters
/// that are safe in a path.
pub(crate) fn create_kernel(
    base: &Path,
    kernel: &str,
    generation: u64,
) -> std::io::Result<PathBuf> {
    let safe: String = kernel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = base.join(format!("{safe}-{generation:016x}"));
    // The base too: a serve that ended in this process may have removed it.
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The pids in cgroup `dir` and its descendants.
pub(crate) fn procs(dir: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(procs(&e.path()));
            }
        }
    }
    out
}

/// Whether cgroup `dir` (or a descendant) still holds a process; false once it is gone.
pub(crate) fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

/// SIGKILLs every process of cgroup `dir` and its descendants at once (`cgroup.kill`).
pub(crate) fn kill(dir: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))?
        .write_all(b"1")
}

/// Polls until cgroup `dir` is empty, up to `timeout`; returns whether it is.
pub(crate) fn wait_empty(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !populated(dir) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes cgroup `dir` and its (empty) descendants, deepest first.
pub(crate) fn remove(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Ends every kernel process that serve `pid` left in its cgroups (the watchdog calls
/// this after serve died): `cgroup.kill` of `grace-<pid>` beside the caller's own
/// cgroup, a wait of up to `timeout` for it to empty, then its removal. Returns whether
/// there was such a cgroup.
pub fn end_serve_cgroups(pid: u32, timeout: Duration) -> bool {
    let Ok(own) = own_dir() else {
        return false;
    };
    let base = own.join(format!("grace-{pid}"));
    if !base.is_dir() {
        return false;
    }
    let _ = kill(&base);
    wait_empty(&base, timeout);
    remove(&base);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_cgroup_names_are_safe_paths() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = create_kernel(d.path(), "a/b c", 255).expect("create");
        assert_eq!(
            dir.file_name().and_then(|n| n.to_str()),
            Some("a_b_c-00000000000000ff")
        );
    }
}
