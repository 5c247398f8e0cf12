//! `grace stop [--all]`: set the kill switch, stop serve within the bound it recorded,
//! and say exactly what is left running, if anything.

use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::control::{poll_until, runtime, serve_pid, signal, watchdog_pid, ControlContext};
use crate::state::{lock_holder, KillSwitch, ServeInfo, StatePaths};
use crate::watchdog::{self, WatchdogError};

/// How long stopping serve may take: the bound serve recorded in `serve.json` with the
/// watchdog's margin (at least `[watchdog] stop_timeout`), then the watchdog's ending of
/// what is left of the generation, and a margin for this command's polling.
pub(super) fn stop_wait(ctx: &ControlContext) -> Duration {
    let info = ServeInfo::read(&ctx.paths).ok().flatten();
    ServeInfo::stop_timeout(info.as_ref(), ctx.config.watchdog.stop_timeout)
        + ServeInfo::GENERATION_END_WAIT
        + Duration::from_secs(2)
}

/// What of this state directory's serve still runs: serve itself and every process
/// carrying its watchdog's mark, each with its state and command line.
fn leftovers(paths: &StatePaths) -> Vec<(u32, String)> {
    let mut pids = watchdog::supervised_processes(paths);
    if let Some(p) = serve_pid(paths) {
        if !pids.contains(&p) {
            pids.push(p);
        }
    }
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            if state == "Z" {
                return None;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|c| *c == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            Some((pid, format!("{cmd} (state {state})")))
        })
        .collect()
}

/// The error of a stop that left processes running: each one, and why.
fn left_running(left: &[(u32, String)], why: &str) -> anyhow::Error {
    let list: Vec<String> = left
        .iter()
        .map(|(pid, cmd)| format!("  pid {pid}: {cmd}"))
        .collect();
    anyhow::anyhow!(
        "{} process(es) of serve still running ({why}):\n{}\n\
         a process in state D (uninterruptible sleep) ends only when its I/O returns; \
         others can be ended with `kill -9 PID`",
        left.len(),
        list.join("\n")
    )
}

/// `grace stop [--all]`: sets the kill switch and stops serve gracefully (through the
/// watchdog when one runs, else directly after checking the process is this
/// directory's serve); with `all`, stops the watchdog too. Exits 0 only when nothing of
/// serve is left running; else names what is left (pid, command) and why.
pub fn stop(ctx: &ControlContext, all: bool) -> anyhow::Result<()> {
    let paths = &ctx.paths;
    KillSwitch::set_manual_shutdown(paths, true, "grace stop")?;
    // Read before the stop: serve removes serve.json as it exits.
    let wait = stop_wait(ctx);
    let started = std::time::Instant::now();
    match watchdog_pid(paths) {
        Some(w) if all => {
            signal(w, Signal::SIGTERM)?;
            if !poll_until(wait, || watchdog_pid(paths).is_none()) {
                let left = leftovers(paths);
                let why = format!(
                    "the watchdog (pid {w}) is still stopping serve after {wait:?}, the \
                     bound serve recorded plus the watchdog's margins"
                );
                if left.is_empty() {
                    return Err(WatchdogError::Timeout {
                        what: format!("the watchdog (pid {w}) stopping"),
                        waited: wait,
                    }
                    .into());
                }
                return Err(left_running(&left, &why));
            }
        }
        Some(w) => signal(w, Signal::SIGUSR1)?,
        None => {
            if let Some(pid) = serve_pid(paths) {
                stop_without_watchdog(ctx, pid)?;
            }
        }
    }
    // A serve no watchdog runs (`grace serve` in a terminal) beside a watchdog: the
    // watchdog does not stop what it did not start, so it is stopped here.
    if let Some(pid) = super::control::foreground_serve(paths) {
        stop_without_watchdog(ctx, pid)?;
    }
    let rest = wait
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(1));
    if !poll_until(rest, || leftovers(paths).is_empty()) {
        let why = format!("still running {wait:?} after the stop began, despite SIGKILL");
        return Err(left_running(&leftovers(paths), &why));
    }
    println!(
        "serve stopped{}; nothing of it is left running; the kill switch is set \
         (`grace start` clears it)",
        if all { ", watchdog stopped" } else { "" }
    );
    Ok(())
}

/// Stops a serve no watchdog runs, after checking it is this directory's: the holder of
/// `serve.lock` named by `serve.json`, or the child a killed watchdog left (same pid and
/// start time as recorded).
pub(super) fn stop_without_watchdog(ctx: &ControlContext, pid: u32) -> anyhow::Result<()> {
    let paths = &ctx.paths;
    let by_lock = lock_holder(&paths.serve_lock()) == Some(pid)
        && ServeInfo::read(paths)
            .ok()
            .flatten()
            .is_some_and(|i| i.pid == pid);
    let recorded = KillSwitch::read(paths)
        .ok()
        .and_then(|k| k.child)
        .filter(|c| c.pid == pid);
    let marked = watchdog::supervised_processes(paths).contains(&pid);
    let pgid = match (&recorded, by_lock || marked) {
        (Some(c), _) => c.pgid,
        // Its process group only when it leads one: a serve started by a script
        // without job control shares the script's group, which is not serve's.
        (None, true) => nix::unistd::getpgid(Some(Pid::from_raw(pid as i32)))
            .map(|p| p.as_raw())
            .ok()
            .filter(|g| *g == pid as i32 && *g != nix::unistd::getpgrp().as_raw())
            .unwrap_or(0),
        (None, false) => {
            return Err(WatchdogError::Refused(format!(
                "process {pid} holds {} but serve.json does not name it; not stopping an \
                 unknown process (check it with `ps -p {pid}`)",
                paths.serve_lock().display()
            ))
            .into())
        }
    };
    let info = ServeInfo::read(paths)
        .ok()
        .flatten()
        .filter(|i| i.pid == pid);
    let timeout = ServeInfo::stop_timeout(info.as_ref(), ctx.config.watchdog.stop_timeout);
    let gone = runtime()?.block_on(crate::watchdog::stop_process(pid, pgid, timeout));
    if !gone {
        anyhow::bail!("serve (pid {pid}) did not stop, even after SIGKILL");
    }
    // Descendants that left its group go too: nothing of the tree outlives a stop.
    for rest in watchdog::supervised_processes(paths) {
        runtime()?.block_on(watchdog::stop_process(rest, 0, Duration::ZERO));
    }
    let _ = KillSwitch::update(paths, "grace stop", |s| s.child = None);
    Ok(())
}
