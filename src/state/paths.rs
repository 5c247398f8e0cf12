//! The layout of the state directory (DESIGN.md, "The state directory").

use std::path::{Path, PathBuf};

/// Paths of every file in one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    root: PathBuf,
}

impl StatePaths {
    /// The layout under `root`, made absolute against the working directory once,
    /// here: every path below is then absolute, so a path built from one of them
    /// (`root().join(..)`) never gets the root joined a second time, and a later change
    /// of working directory does not move the state.
    pub fn new(root: impl Into<PathBuf>) -> StatePaths {
        let root = root.into();
        StatePaths {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// Chooses the state directory: `--state-dir`, else `GRACE_STATE_DIR`, else
    /// `.grace/` beside the config file, else `.grace/` in the working directory.
    pub fn resolve(cli: Option<&Path>, config_file: Option<&Path>) -> StatePaths {
        if let Some(d) = cli {
            return StatePaths::new(d);
        }
        if let Some(d) = std::env::var_os("GRACE_STATE_DIR").filter(|v| !v.is_empty()) {
            return StatePaths::new(PathBuf::from(d));
        }
        let base = config_file
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        StatePaths::new(base.join(".grace"))
    }

    /// Creates the directory and its subdirectories.
    pub fn create(&self) -> std::io::Result<()> {
        for d in [
            self.root.clone(),
            self.alerts_dir(),
            self.snapshots_dir(),
            self.diagnostics_dir(),
            self.logs_dir(),
        ] {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `state.json`: the kill switch.
    pub fn state_json(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// `state.json.last-good`: a copy of the last `state.json` written, what the switch
    /// was when `state.json` cannot be read.
    pub fn state_json_last_good(&self) -> PathBuf {
        self.root.join("state.json.last-good")
    }
    /// `serve.json`: pid, port, started_at of the running serve.
    pub fn serve_json(&self) -> PathBuf {
        self.root.join("serve.json")
    }
    /// `watchdog.pid`.
    pub fn watchdog_pid(&self) -> PathBuf {
        self.root.join("watchdog.pid")
    }
    /// `watchdog.log` (JSON lines).
    pub fn watchdog_log(&self) -> PathBuf {
        self.root.join("watchdog.log")
    }
    /// `alerts/`.
    pub fn alerts_dir(&self) -> PathBuf {
        self.root.join("alerts")
    }
    /// `incidents.jsonl`.
    pub fn incidents(&self) -> PathBuf {
        self.root.join("incidents.jsonl")
    }
    /// `audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }
    /// `restarts.jsonl`: the kernel restarts the dashboard's chart shows (checksummed
    /// records, bounded).
    pub fn restart_history(&self) -> PathBuf {
        self.root.join("restarts.jsonl")
    }
    /// `trust.json`: trust scores by component.
    pub fn trust_json(&self) -> PathBuf {
        self.root.join("trust.json")
    }
    /// `snapshots/`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    /// `diagnostics/`.
    pub fn diagnostics_dir(&self) -> PathBuf {
        self.root.join("diagnostics")
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `logs/grace.jsonl`.
    pub fn log_file(&self) -> PathBuf {
        self.logs_dir().join("grace.jsonl")
    }
    /// `logs/serve.out`: what serve prints outside its log (a panic message) while a
    /// background watchdog runs it.
    pub fn serve_output(&self) -> PathBuf {
        self.logs_dir().join("serve.out")
    }
    /// `logs/watchdog.out`: what a background watchdog prints outside `watchdog.log`.
    pub fn watchdog_output(&self) -> PathBuf {
        self.logs_dir().join("watchdog.out")
    }
    /// `incidents/`: closed incidents past `[incidents] retain_closed`, one file per
    /// month (`YYYY-MM.jsonl`).
    pub fn incident_segments(&self) -> PathBuf {
        self.root.join("incidents")
    }
    /// `audit/`: the closed segments of the audit log.
    pub fn audit_segments(&self) -> PathBuf {
        self.root.join("audit")
    }
    /// `token`: the bearer token for mutating API calls (mode 0600).
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }
    /// `serve.lock`: held by the one serve of this directory.
    pub fn serve_lock(&self) -> PathBuf {
        self.root.join("serve.lock")
    }
    /// `watchdog.lock`: held by the one watchdog of this directory.
    pub fn watchdog_lock(&self) -> PathBuf {
        self.root.join("watchdog.lock")
    }
}
