//! `state.json`: the kill switch and what the watchdog must remember across its own
//! restarts and reboots (restart count, last exit reason, the child it was running).
//!
//! Every change is a read-modify-write under a short flock on `.state.json.lock`, so a
//! `grace stop` and a watchdog recording a restart never overwrite each other, and the
//! write itself is atomic (temporary file, fsync, rename): a reader never sees a torn file.
//!
//! Every write also leaves a copy in `state.json.last-good`. When `state.json` cannot be
//! read (emptied, garbage, hand-edited), readers say so ([`KillSwitch::unreadable`]) and
//! take the switch as it was last known from that copy; with no copy the switch is
//! taken as clear, with a loud warning. The next change rewrites `state.json` whole.

use serde::{Deserialize, Serialize};

use super::{atomic_write, StateError, StateLock, StatePaths};

/// The content of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillSwitch {
    /// Set by `grace stop`: the watchdog must not run serve.
    pub manual_shutdown: bool,
    /// When the file was last written (RFC 3339).
    pub timestamp: String,
    /// How many times the watchdog has restarted serve, ever.
    #[serde(default)]
    pub restart_count: u64,
    /// Why serve last stopped (`crashed: exit code 1`, `hung`, `stopped`, ...).
    #[serde(default)]
    pub last_exit_reason: Option<String>,
    /// When serve last stopped (RFC 3339).
    #[serde(default)]
    pub last_exit_at: Option<String>,
    /// The class of serve's last stop: how its run ended (`exited`, `killed`, `hung`,
    /// `never_ready`, `restart_requested`) or `stopped` when the watchdog stopped it.
    #[serde(default)]
    pub last_exit_cause: Option<String>,
    /// The watchdog's restarts of serve by cause: how the run before ended
    /// (`exited`, `killed`, `hung`, `never_ready`, `restart_requested`), `start_failed`
    /// when serve could not even be spawned, `requested` for SIGHUP or `grace restart`.
    #[serde(default)]
    pub serve_restarts: std::collections::BTreeMap<String, u64>,
    /// Crash loops: pauses after `max_consecutive_failures` failed starts in a row (or
    /// a configuration serve refused), each raising the critical `watchdog.crash_loop`.
    #[serde(default)]
    pub crash_loops: u64,
    /// Who wrote the file last (`grace stop`, `watchdog`, ...).
    #[serde(default)]
    pub updated_by: String,
    /// Who last changed `manual_shutdown` (`grace stop`, `grace start`), for the audit
    /// trail; `updated_by` names the last writer of any field.
    #[serde(default)]
    pub switch_changed_by: Option<String>,
    /// When `manual_shutdown` last changed (RFC 3339).
    #[serde(default)]
    pub switch_changed_at: Option<String>,
    /// The process group the watchdog is running now, so a watchdog started after the
    /// previous one was killed can find and stop it.
    #[serde(default)]
    pub child: Option<ChildRecord>,
    /// Set only when `state.json` could not be read ([`KillSwitch::read_last_known`]):
    /// the file and the error. The other fields are then the last known content. Never
    /// written to `state.json`.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// A child process of the watchdog, identified beyond its pid so a reused pid is not
/// mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// Its pid.
    pub pid: u32,
    /// Its process group (its own pid: it leads its group).
    pub pgid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    /// The watchdog that started it.
    pub watchdog_pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
}

impl Default for KillSwitch {
    fn default() -> Self {
        KillSwitch {
            manual_shutdown: false,
            timestamp: crate::time::rfc3339(crate::time::now()),
            restart_count: 0,
            last_exit_reason: None,
            last_exit_at: None,
            last_exit_cause: None,
            serve_restarts: Default::default(),
            crash_loops: 0,
            updated_by: String::new(),
            switch_changed_by: None,
            switch_changed_at: None,
            child: None,
            unreadable: None,
        }
    }
}

impl KillSwitch {
    /// Reads `state.json`; a missing file is the default (switch off).
    pub fn read(paths: &StatePaths) -> Result<KillSwitch, StateError> {
        let path = paths.state_json();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KillSwitch::default()),
            Err(e) => return Err(StateError::io(path, "read", e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path,
            what: "state.json (the kill switch)",
            reason: e.to_string(),
        })
    }

    /// The last content written, from `state.json.last-good`; `None` when that copy is
    /// missing or unreadable too.
    pub fn last_good(paths: &StatePaths) -> Option<KillSwitch> {
        let bytes = std::fs::read(paths.state_json_last_good()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Reads `state.json`, never failing: when it cannot be read, the last known content
    /// (`state.json.last-good`, else the default: switch clear) with
    /// [`unreadable`](KillSwitch::unreadable) naming the file and the error.
    pub fn read_last_known(paths: &StatePaths) -> KillSwitch {
        match KillSwitch::read(paths) {
            Ok(s) => s,
            Err(e) => KillSwitch {
                unreadable: Some(e.to_string()),
                ..KillSwitch::last_good(paths).unwrap_or_default()
            },
        }
    }

    /// Changes `state.json` with `f` under the update lock, stamping `timestamp` and
    /// `updated_by`; returns the new content. A `state.json` that does not parse is
    /// replaced whole: its last known content (`state.json.last-good`) is changed, or,
    /// with no copy, the default with the switch clear, recorded as changed by
    /// `state.json unreadable` and warned about.
    pub fn update(
        paths: &StatePaths,
        updated_by: &str,
        f: impl FnOnce(&mut KillSwitch),
    ) -> Result<KillSwitch, StateError> {
        let lock_path = paths.root().join(".state.json.lock");
        let _lock = StateLock::wait(&lock_path)?;
        let mut s = match KillSwitch::read(paths) {
            Ok(s) => s,
            Err(e @ StateError::Corrupt { .. }) => match KillSwitch::last_good(paths) {
                Some(s) => {
                    tracing::warn!(error = %e, switch = s.manual_shutdown,
                        "state.json unreadable: rewriting it from state.json.last-good");
                    s
                }
                None => {
                    tracing::error!(error = %e,
                        "state.json unreadable and no state.json.last-good: \
                         rewriting it with the kill switch CLEAR");
                    KillSwitch {
                        switch_changed_by: Some("state.json unreadable".to_owned()),
                        switch_changed_at: Some(crate::time::rfc3339(crate::time::now())),
                        ..KillSwitch::default()
                    }
                }
            },
            Err(e) => return Err(e),
        };
        f(&mut s);
        s.timestamp = crate::time::rfc3339(crate::time::now());
        s.updated_by = updated_by.to_owned();
        s.unreadable = None;
        s.write(paths)?;
        Ok(s)
    }

    /// Sets or clears the switch (what `grace stop` and `grace start` do).
    pub fn set_manual_shutdown(
        paths: &StatePaths,
        on: bool,
        updated_by: &str,
    ) -> Result<KillSwitch, StateError> {
        KillSwitch::update(paths, updated_by, |s| {
            if s.manual_shutdown != on || s.switch_changed_by.is_none() {
                s.switch_changed_by = Some(updated_by.to_owned());
                s.switch_changed_at = Some(crate::time::rfc3339(crate::time::now()));
            }
            s.manual_shutdown = on;
        })
    }

    fn write(&self, paths: &StatePaths) -> Result<(), StateError> {
        let path = paths.state_json();
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            what: "state.json (the kill switch)",
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        atomic_write(&path, &bytes).map_err(|e| StateError::io(path, "write", e))?;
        let copy = paths.state_json_last_good();
        atomic_write(&copy, &bytes).map_err(|e| StateError::io(copy, "write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_means_switch_off_and_updates_persist() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        assert!(!KillSwitch::read(&paths).expect("read").manual_shutdown);
        KillSwitch::set_manual_shutdown(&paths, true, "grace stop").expect("set");
        KillSwitch::update(&paths, "watchdog", |s| s.restart_count += 2).expect("update");
        let s = KillSwitch::read(&paths).expect("read");
        assert!(s.manual_shutdown, "a watchdog update keeps the switch");
        assert_eq!(s.restart_count, 2);
        assert_eq!(s.updated_by, "watchdog");
        assert!(chrono::DateTime::parse_from_rfc3339(&s.timestamp).is_ok());
    }

    #[test]
    fn unreadable_file_is_reported_keeps_the_last_known_switch_and_is_rewritten_whole() {
        for garbage in [&b""[..], b"{\"manual_shu", b"\x00\xffnot json"] {
            let d = tempfile::tempdir().expect("tempdir");
            let paths = StatePaths::new(d.path());
            KillSwitch::set_manual_shutdown(&paths, true, "grace stop").expect("set");
            std::fs::write(paths.state_json(), garbage).expect("damage");
            let err = KillSwitch::read(&paths).expect_err("corrupt");
            assert!(err.to_string().contains("state.json"), "{err}");

            let known = KillSwitch::read_last_known(&paths);
            let why = known.unreadable.as_deref().expect("says unreadable");
            assert!(
                why.contains(&paths.state_json().display().to_string()),
                "{why}"
            );
            assert!(known.manual_shutdown, "the switch as last written");
            assert_eq!(known.switch_changed_by.as_deref(), Some("grace stop"));

            let s =
                KillSwitch::update(&paths, "watchdog", |s| s.restart_count += 1).expect("update");
            assert!(s.manual_shutdown);
            let back = KillSwitch::read(&paths).expect("rewritten whole");
            assert_eq!(back, s);
            assert_eq!(back.switch_changed_by.as_deref(), Some("grace stop"));
            let text = std::fs::read_to_string(paths.state_json()).expect("read");
            assert!(!text.contains("unreadable"), "{text}");
        }
    }

    #[test]
    fn unreadable_file_without_a_copy_is_taken_as_clear_and_says_who() {
        let d = tempfile::tempdir().expect("tempdir");
        let paths = StatePaths::new(d.path());
        std::fs::write(paths.state_json(), b"").expect("empty");
        let known = KillSwitch::read_last_known(&paths);
        assert!(known.unreadable.is_some());
        assert!(!known.manual_shutdown);
        let s = KillSwitch::update(&paths, "watchdog", |_| {}).expect("update");
        assert!(!s.manual_shutdown);
        assert_eq!(
            s.switch_changed_by.as_deref(),
            Some("state.json unreadable")
        );
        assert_eq!(KillSwitch::read(&paths).expect("rewritten"), s);
        assert_eq!(KillSwitch::last_good(&paths), Some(s));
    }
}
