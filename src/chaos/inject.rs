//! Carrying out one injection of a fault against the target. What must be undone when
//! the fault ends comes back as a guard ([`Held`]); the caller drops it at the end of
//! the fault's duration, or earlier on abort, error or Ctrl-C.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::client::{read_serve_json, Client, HttpResponse};
use super::guard::{alive, newest_match, signal, Corrupted, PortHold, Stopped};
use super::scenario::{FaultKind, KernelAction, Process, SwitchAction};
use super::siege::{CpuSiege, DiskSiege, MemorySiege};
use super::ChaosError;
use crate::state::StatePaths;

/// How to run `grace stop` / `grace start` against the target.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    /// The grace binary.
    pub exe: PathBuf,
    /// Global options (`--config`, `--state-dir`).
    pub global: Vec<OsString>,
    /// Options `grace start` passes on to serve (`--port 0`).
    pub serve_args: Vec<String>,
}

/// What the fault acts on.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub client: Client,
    pub paths: StatePaths,
    pub control: Option<Control>,
    pub seed: u64,
}

/// What a fault holds until it ends.
#[derive(Debug)]
#[allow(dead_code)] // The guards are held for their Drop.
pub(crate) enum Held {
    Nothing,
    Cpu(CpuSiege),
    Memory(MemorySiege),
    Disk(DiskSiege),
    Stopped(Stopped),
    Port(PortHold),
    Connections(super::conns::HeldConnections),
}

/// The result of one injection.
#[derive(Debug)]
pub(crate) struct Injected {
    pub held: Held,
    pub corrupted: Option<Corrupted>,
    pub notes: Vec<String>,
}

impl Injected {
    fn plain(held: Held) -> Injected {
        Injected {
            held,
            corrupted: None,
            notes: Vec::new(),
        }
    }
}

pub(crate) fn inject_err(kind: &FaultKind, message: impl Into<String>) -> ChaosError {
    ChaosError::Inject {
        fault: kind.label(),
        message: message.into(),
    }
}

async fn chaos_post(
    ctx: &Ctx,
    kind: &FaultKind,
    path: &str,
    body: serde_json::Value,
) -> Result<(), ChaosError> {
    let resp = ctx.client.post(path, &body).await?;
    check(ctx, kind, &resp).await
}

async fn check(ctx: &Ctx, kind: &FaultKind, resp: &HttpResponse) -> Result<(), ChaosError> {
    match resp.status {
        200..=299 => Ok(()),
        401 | 403 => Err(ChaosError::Target(format!(
            "the target refused the token ({}): pass the target's --state-dir so that the harness reads its token file",
            resp.status
        ))),
        404 => {
            if let FaultKind::Kernel { kernel, .. } = kind {
                let names = kernel_names(ctx).await;
                if !names.is_empty() && !names.contains(kernel) {
                    return Err(ChaosError::UnsupportedTarget(format!(
                        "no kernel named {kernel} on the target (its kernels: {})",
                        names.join(", ")
                    )));
                }
            }
            Err(inject_err(
                kind,
                "the chaos endpoints answered 404: enable them with `[chaos] enabled = true` in the target's grace.toml",
            ))
        }
        s => Err(inject_err(
            kind,
            format!(
                "the target answered {s}: {}",
                String::from_utf8_lossy(&resp.body).chars().take(300).collect::<String>()
            ),
        )),
    }
}

async fn kernel_names(ctx: &Ctx) -> Vec<String> {
    let Ok(r) = ctx.client.get("/api/kernels").await else {
        return Vec::new();
    };
    r.json()
        .and_then(|v| super::monitor::parse_kernels(&v).ok())
        .map(|ks| ks.into_iter().map(|k| k.name).collect())
        .unwrap_or_default()
}

fn process_pid(ctx: &Ctx, p: Process) -> Result<u32, ChaosError> {
    let (pid, file) = match p {
        Process::Serve => (
            read_serve_json(&ctx.paths.serve_json()).map(|r| r.pid),
            ctx.paths.serve_json(),
        ),
        Process::Watchdog => (
            std::fs::read_to_string(ctx.paths.watchdog_pid())
                .ok()
                .and_then(|t| t.trim().parse().ok()),
            ctx.paths.watchdog_pid(),
        ),
    };
    let pid = pid.ok_or_else(|| {
        ChaosError::UnsupportedTarget(format!(
            "{} does not exist or has no pid: that process is not running for this state directory",
            file.display()
        ))
    })?;
    if pid <= 1 || pid == std::process::id() || !alive(pid) {
        return Err(ChaosError::UnsupportedTarget(format!(
            "pid {pid} in {} is not a running process",
            file.display()
        )));
    }
    Ok(pid)
}

/// Injects `kind` once (`rep` is the repeat number, mixed into the seed).
pub(crate) async fn inject_once(
    kind: &FaultKind,
    duration: Option<Duration>,
    ctx: &Ctx,
    rep: u32,
) -> Result<Injected, ChaosError> {
    let io = |e: std::io::Error| inject_err(kind, e.to_string());
    match kind {
        FaultKind::Kernel { kernel, action } => {
            let body = match action {
                KernelAction::Spin => serde_json::json!({
                    "ms": duration.map(|d| d.as_millis() as u64).unwrap_or(1000)
                }),
                _ => serde_json::json!({}),
            };
            let path = format!("/api/chaos/kernels/{kernel}/{}", action.as_str());
            chaos_post(ctx, kind, &path, body).await?;
            Ok(Injected::plain(Held::Nothing))
        }
        FaultKind::Sigkill { process } => {
            signal(process_pid(ctx, *process)?, Signal::SIGKILL).map_err(io)?;
            Ok(Injected::plain(Held::Nothing))
        }
        FaultKind::Sigstop { process } => {
            let s = Stopped::stop(process_pid(ctx, *process)?).map_err(io)?;
            Ok(Injected::plain(Held::Stopped(s)))
        }
        FaultKind::Corrupt { file, mode, bytes } => {
            let path = newest_match(ctx.paths.root(), file).ok_or_else(|| {
                ChaosError::UnsupportedTarget(format!(
                    "no file matches {file:?} in {}: the part of Grace that writes it is not running or not in this build",
                    ctx.paths.root().display()
                ))
            })?;
            let c = Corrupted::corrupt(&path, *mode, *bytes, ctx.seed.wrapping_add(u64::from(rep)))
                .map_err(io)?;
            let shown = path
                .strip_prefix(ctx.paths.root())
                .unwrap_or(&path)
                .display()
                .to_string();
            Ok(Injected {
                held: Held::Nothing,
                corrupted: Some(c),
                notes: vec![format!("corrupted {shown}")],
            })
        }
        FaultKind::CpuSiege { threads } => Ok(Injected::plain(Held::Cpu(
            CpuSiege::start(*threads).map_err(io)?,
        ))),
        FaultKind::MemorySiege {
            mib,
            level,
            max_mib,
        } => {
            let (mib, level, max_mib) = (*mib, *level, *max_mib);
            let (s, wanted) = tokio::task::spawn_blocking(move || match (mib, level) {
                (_, Some(l)) => MemorySiege::to_level(l, max_mib),
                (m, None) => {
                    let m = m.unwrap_or(max_mib).min(max_mib);
                    MemorySiege::start(m).map(|s| (s, m << 20))
                }
            })
            .await
            .map_err(|e| inject_err(kind, e.to_string()))?
            .map_err(io)?;
            let mut notes = vec![format!("holding {} MiB", s.bytes() >> 20)];
            if (s.bytes() as u64) < wanted {
                notes.push(format!(
                    "capped at max_mib = {max_mib}: the level was not reached ({} MiB needed)",
                    wanted >> 20
                ));
            }
            Ok(Injected {
                held: Held::Memory(s),
                corrupted: None,
                notes,
            })
        }
        FaultKind::DiskSiege {
            dir,
            mib,
            level,
            max_mib,
        } => {
            let dir = match dir {
                Some(d) if d.is_absolute() => d.clone(),
                Some(d) => ctx.paths.root().join(d),
                None => ctx.paths.root().to_path_buf(),
            };
            let (mib, level, max_mib) = (*mib, *level, *max_mib);
            let s = tokio::task::spawn_blocking(move || match (mib, level) {
                (_, Some(l)) => DiskSiege::start(&dir, l, max_mib),
                (m, None) => DiskSiege::of_size(&dir, m.unwrap_or(max_mib).min(max_mib)),
            })
            .await
            .map_err(|e| inject_err(kind, e.to_string()))?
            .map_err(io)?;
            let mut notes = vec![format!("disk siege file of {} MiB", s.bytes() >> 20)];
            if s.capped() {
                notes.push(format!(
                    "capped (max_mib = {max_mib}, {} MiB kept free): the file is smaller than asked",
                    super::siege::DISK_RESERVE >> 20
                ));
            }
            Ok(Injected {
                held: Held::Disk(s),
                corrupted: None,
                notes,
            })
        }
        FaultKind::OccupyPort => occupy_port(ctx, kind).await,
        FaultKind::ErrorBurst { count } => {
            chaos_post(
                ctx,
                kind,
                "/api/chaos/errors",
                serde_json::json!({ "count": count }),
            )
            .await?;
            Ok(Injected::plain(Held::Nothing))
        }
        FaultKind::Latency { ms } => {
            let duration_s = duration.map(|d| d.as_secs_f64()).unwrap_or(1.0);
            chaos_post(
                ctx,
                kind,
                "/api/chaos/latency",
                serde_json::json!({ "ms": ms, "duration_s": duration_s }),
            )
            .await?;
            Ok(Injected::plain(Held::Nothing))
        }
        FaultKind::KillSwitch { action } => {
            kill_switch(ctx, kind, *action).await?;
            Ok(Injected::plain(Held::Nothing))
        }
        FaultKind::StallUploads { connections, path } => {
            super::conns::hold(ctx, kind, *connections, Some(path.clone())).await
        }
        FaultKind::IdleConnections { connections } => {
            super::conns::hold(ctx, kind, *connections, None).await
        }
    }
}

/// Takes serve's port and kills serve, with the watchdog held still meanwhile so that
/// its restart cannot take the port back first.
async fn occupy_port(ctx: &Ctx, kind: &FaultKind) -> Result<Injected, ChaosError> {
    let rec = read_serve_json(&ctx.paths.serve_json()).ok_or_else(|| {
        ChaosError::UnsupportedTarget(format!(
            "no serve.json in {}: serve is not running",
            ctx.paths.root().display()
        ))
    })?;
    let serve = process_pid(ctx, Process::Serve)?;
    let held_watchdog = match process_pid(ctx, Process::Watchdog) {
        Ok(pid) => Some(Stopped::stop(pid).map_err(|e| inject_err(kind, e.to_string()))?),
        Err(_) => None,
    };
    signal(serve, Signal::SIGKILL).map_err(|e| inject_err(kind, e.to_string()))?;
    let host = match rec.bind.as_deref() {
        None | Some("") | Some("0.0.0.0") => "127.0.0.1",
        Some(b) => b,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let hold = loop {
        match PortHold::bind(host, rec.port) {
            Ok(h) => break h,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(inject_err(
                    kind,
                    format!("cannot bind {host}:{} after killing serve: {e}", rec.port),
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    };
    drop(held_watchdog);
    Ok(Injected {
        held: Held::Port(hold),
        corrupted: None,
        notes: vec![format!("holding {host}:{}", rec.port)],
    })
}

async fn kill_switch(ctx: &Ctx, kind: &FaultKind, action: SwitchAction) -> Result<(), ChaosError> {
    let control = ctx.control.as_ref().ok_or_else(|| {
        ChaosError::UnsupportedTarget(
            "kill_switch needs the grace binary to run `grace stop`/`grace start`".to_owned(),
        )
    })?;
    let mut cmd = tokio::process::Command::new(&control.exe);
    cmd.args(&control.global);
    match action {
        SwitchAction::Stop => {
            cmd.arg("stop");
        }
        SwitchAction::Start => {
            cmd.arg("start").args(&control.serve_args);
        }
    }
    // A background watchdog started by `grace start` inherits stdout and stderr: they
    // go to a file, never to a pipe this process would wait on.
    let log = std::env::temp_dir().join(format!(
        "grace-chaos-switch-{}-{}.log",
        std::process::id(),
        crate::time::mono_ms()
    ));
    let file = std::fs::File::create(&log).map_err(|e| inject_err(kind, e.to_string()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| inject_err(kind, e.to_string()))?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(file2)
        .kill_on_drop(true);
    let status = tokio::time::timeout(Duration::from_secs(60), cmd.status()).await;
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let status = status
        .map_err(|_| inject_err(kind, "the command did not finish within 60 s"))?
        .map_err(|e| inject_err(kind, format!("cannot run {}: {e}", control.exe.display())))?;
    if !status.success() {
        return Err(inject_err(
            kind,
            format!("the command failed ({status}): {}", output.trim()),
        ));
    }
    Ok(())
}
