//! `--spawn`: the harness's own instance. A temporary directory holds a generated
//! `grace.toml` (the default, chaos enabled, the scenario's overrides) and the state
//! directory; `grace watch` runs there over `grace serve`. Teardown stops it with
//! `grace stop --all`, then kills whatever is left: the watchdog's process group,
//! serve's, and every process whose working directory is inside the temporary
//! directory (exec kernels included). Dropping an [`Instance`] kills at once.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::client::{read_serve_json, Client, Endpoint};
use super::guard::alive;
use super::host::{relative_thresholds, Usage};
use super::inject::Control;
use super::{ChaosError, Scenario};
use crate::config::{ConfigSource, DEFAULT_TOML};
use crate::state::StatePaths;

/// Merges `over` into `base`: tables key by key, `kernel` arrays by kernel name (same
/// name replaces, a new one is appended), anything else replaced.
pub fn merge_config(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_config(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o)) if k == "kernel" => {
                for item in o {
                    let name = item.get("name").and_then(toml::Value::as_str);
                    let same = b.iter_mut().find(|x| {
                        name.is_some() && x.get("name").and_then(toml::Value::as_str) == name
                    });
                    match same {
                        Some(slot) => *slot = item.clone(),
                        None => b.push(item.clone()),
                    }
                }
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The host's CPU, memory and disk belong to everyone on it: a spawned instance watches
/// them (`resource_spike`) only in scenarios about them, whose `config:` sets
/// `[triggers.resource_spike]`, so that other work on the host cannot open incidents
/// in a scenario about something else.
fn quiet_host(scn: &Scenario) -> toml::Table {
    let about_resources = scn
        .config
        .get("triggers")
        .and_then(|t| t.get("resource_spike"))
        .is_some();
    if about_resources {
        return toml::Table::new();
    }
    toml::toml! {
        [triggers.resource_spike]
        enabled = false
    }
}

/// The `grace.toml` of a spawned instance for `scn`, checked like `grace check` would.
pub fn spawn_config(scn: &Scenario) -> Result<String, ChaosError> {
    spawn_config_with(scn, &toml::Table::new())
}

/// [`spawn_config`] with `host` (thresholds computed from the host, see
/// [`super::host`]) merged last.
pub fn spawn_config_with(scn: &Scenario, host: &toml::Table) -> Result<String, ChaosError> {
    let invalid = |message: String| ChaosError::Invalid {
        file: scn.name.clone(),
        message,
    };
    let mut base: toml::Table = toml::from_str(DEFAULT_TOML)
        .map_err(|e| invalid(format!("the embedded default config does not parse: {e}")))?;
    let mut chaos = toml::Table::new();
    chaos.insert("enabled".into(), toml::Value::Boolean(true));
    let mut on = toml::Table::new();
    on.insert("chaos".into(), toml::Value::Table(chaos));
    merge_config(&mut base, &on);
    merge_config(&mut base, &quiet_host(scn));
    merge_config(&mut base, &scn.config);
    merge_config(&mut base, host);
    let text = toml::to_string(&base).map_err(|e| {
        invalid(format!(
            "its config overrides cannot be written as TOML: {e}"
        ))
    })?;
    crate::config::parse(
        &text,
        ConfigSource::File(PathBuf::from("<generated grace.toml>")),
    )
    .map_err(|e| {
        invalid(format!(
            "its `config:` overrides do not make a valid grace.toml: {e}"
        ))
    })?;
    Ok(text)
}

/// A spawned instance.
#[derive(Debug)]
pub(crate) struct Instance {
    root: PathBuf,
    pub paths: StatePaths,
    config: PathBuf,
    exe: PathBuf,
    serve_args: Vec<String>,
    child: Option<std::process::Child>,
    log: PathBuf,
}

fn unique_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("grace-chaos-{}-{nanos}", std::process::id()))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

impl Instance {
    /// Starts `grace watch` for `scn` and waits until serve is healthy.
    pub async fn start(
        exe: &Path,
        scn: &Scenario,
        ready_within: Duration,
    ) -> Result<Instance, ChaosError> {
        let root = unique_dir();
        let paths = StatePaths::new(root.join("state"));
        paths
            .create()
            .map_err(|e| ChaosError::io("cannot create the instance directory", &root, e))?;
        let host = relative_thresholds(
            &scn.spawn,
            Usage::memory().ok(),
            Usage::disk(paths.root()).ok(),
        )
        .map_err(|message| ChaosError::Invalid {
            file: scn.name.clone(),
            message,
        });
        let text = match host.and_then(|h| spawn_config_with(scn, &h)) {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                return Err(e);
            }
        };
        let config = root.join("grace.toml");
        std::fs::write(&config, text)
            .map_err(|e| ChaosError::io("cannot write the instance config", &config, e))?;
        let port = if scn.spawn.fixed_port {
            free_port().map_err(|e| ChaosError::Spawn(format!("cannot find a free port: {e}")))?
        } else {
            0
        };
        let log = root.join("watch.log");
        let mut inst = Instance {
            root,
            paths,
            config,
            exe: exe.to_path_buf(),
            serve_args: vec!["--port".to_owned(), port.to_string()],
            child: None,
            log,
        };
        let out = std::fs::File::create(&inst.log)
            .map_err(|e| ChaosError::io("cannot create", &inst.log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| ChaosError::io("cannot create", &inst.log, e))?;
        // With a descriptor limit, util-linux's `prlimit` sets it and then execs the
        // watchdog in its place (same pid), which passes it on to serve.
        let mut cmd = match scn.spawn.nofile {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}")).arg("--").arg(exe);
                c
            }
            None => std::process::Command::new(exe),
        };
        cmd.args(inst.global())
            .arg("watch")
            .args(&inst.serve_args)
            .current_dir(&inst.root)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            let how = match scn.spawn.nofile {
                Some(_) => " under prlimit (util-linux), which spawn.nofile needs",
                None => "",
            };
            ChaosError::Spawn(format!("cannot run {} watch{how}: {e}", exe.display()))
        })?;
        inst.child = Some(child);
        inst.wait_healthy(ready_within).await?;
        Ok(inst)
    }

    fn global(&self) -> Vec<OsString> {
        vec![
            "--config".into(),
            self.config.clone().into(),
            "--state-dir".into(),
            self.paths.root().into(),
        ]
    }

    /// How to run `grace stop`/`start` on it.
    pub fn control(&self) -> Control {
        Control {
            exe: self.exe.clone(),
            global: self.global(),
            serve_args: self.serve_args.clone(),
        }
    }

    /// A client that follows serve's port in `serve.json`, with the instance's token.
    pub fn client(&self) -> Client {
        let token = std::fs::read_to_string(self.paths.token())
            .ok()
            .map(|t| t.trim().to_owned());
        Client::new(Endpoint::ServeJson(self.paths.serve_json()), token)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Whether the watchdog has seen serve healthy (`serve.ready` in its log). Until
    /// then it takes a serve that stops answering for one still starting, and would
    /// only replace it after its `ready_timeout`: a fault injected that early would
    /// measure the start-up window, not the watchdog's hang detection.
    fn watchdog_saw_ready(&self) -> bool {
        std::fs::read_to_string(self.paths.watchdog_log())
            .map(|log| log.contains("\"message\":\"serve.ready\""))
            .unwrap_or(false)
    }

    async fn wait_healthy(&mut self, within: Duration) -> Result<(), ChaosError> {
        let deadline = tokio::time::Instant::now() + within;
        let probe = Client::new(Endpoint::ServeJson(self.paths.serve_json()), None)
            .with_timeout(Duration::from_secs(1));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(ChaosError::Spawn(format!(
                        "grace watch exited ({status}) before serve was healthy; its output:\n{}",
                        self.log_tail()
                    )));
                }
            }
            let healthy = matches!(probe.get("/health").await, Ok(r) if r.status == 200);
            if healthy && self.paths.token().is_file() && self.watchdog_saw_ready() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChaosError::Spawn(format!(
                    "serve was not healthy within {within:?}; the watchdog's output:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the instance: `grace stop --all`, then kills whatever is left. Returns
    /// what it had to do.
    pub async fn stop(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let stop = tokio::process::Command::new(&self.exe)
            .args(self.global())
            .args(["stop", "--all"])
            .current_dir(&self.root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(Duration::from_secs(20), stop).await {
            Ok(Ok(s)) if s.success() => {
                notes.push("instance stopped with `grace stop --all`".to_owned())
            }
            Ok(Ok(s)) => notes.push(format!("`grace stop --all` failed ({s})")),
            Ok(Err(e)) => notes.push(format!("cannot run `grace stop --all`: {e}")),
            Err(_) => notes.push("`grace stop --all` did not finish within 20 s".to_owned()),
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Some(child) = self.child.as_mut() {
            if !matches!(child.try_wait(), Ok(None)) || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed = self.kill_everything();
        if killed > 0 {
            notes.push(format!("killed {killed} leftover process(es)"));
        }
        notes
    }

    /// SIGKILL to the watchdog's and serve's process groups and to every process
    /// working inside the instance directory; reaps the watchdog. Returns how many
    /// processes were still there.
    fn kill_everything(&mut self) -> usize {
        let mut killed = 0;
        let mut pgroups = Vec::new();
        if let Some(c) = &self.child {
            pgroups.push(c.id());
        }
        // The pids in the state directory are only trusted while they still work in
        // the instance directory (a stale pid may belong to someone else by now).
        let ours = processes_in(&self.root);
        if let Some(r) = read_serve_json(&self.paths.serve_json()) {
            pgroups.extend(ours.contains(&r.pid).then_some(r.pid));
        }
        if let Some(p) = std::fs::read_to_string(self.paths.watchdog_pid())
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            pgroups.extend(ours.contains(&p).then_some(p));
        }
        for pg in pgroups {
            if let Ok(raw) = i32::try_from(pg) {
                if raw > 1 && alive(pg) && kill(Pid::from_raw(-raw), Signal::SIGKILL).is_ok() {
                    killed += 1;
                }
            }
        }
        for _ in 0..3 {
            let strays = processes_in(&self.root);
            if strays.is_empty() {
                break;
            }
            for pid in strays {
                if let Ok(raw) = i32::try_from(pid) {
                    if kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok() {
                        killed += 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        killed
    }
}

/// Processes (other than this one) whose working directory is `dir` or inside it.
pub(crate) fn processes_in(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|cwd| cwd.starts_with(dir))
                .unwrap_or(false)
        })
        .collect()
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill_everything();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
