//! Checks a parsed configuration beyond its shape: unique names, timings that make
//! sense, kinds that exist. Each error names the file, the line and the fix.

use std::collections::HashSet;
use std::time::Duration;

use super::load::{line_of, Loaded};
use super::ConfigError;
use crate::kernel::Isolation;

/// Names the tree uses for its own parts; a user kernel may not take them.
pub const RESERVED_NAMES: [&str; 9] = [
    "root",
    "system",
    "kernels",
    "http",
    "message_bus",
    "incident_log",
    "self_healing",
    "coding_agent",
    "triggers",
];

fn err(l: &Loaded, needle: &str, msg: String) -> ConfigError {
    ConfigError(format!(
        "{}:{}: {msg}",
        l.source.display(),
        line_of(&l.text, needle)
    ))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Validates `l.config`.
pub fn validate(l: &Loaded) -> Result<(), ConfigError> {
    let c = &l.config;
    let hb = &c.heartbeat;
    if hb.timeout <= hb.interval {
        return Err(err(
            l,
            "timeout",
            format!(
                "heartbeat.timeout ({:?}) must be longer than heartbeat.interval ({:?})",
                hb.timeout, hb.interval
            ),
        ));
    }
    if hb.critical_timeout <= hb.critical_interval {
        return Err(err(
            l,
            "critical_timeout",
            "heartbeat.critical_timeout must be longer than heartbeat.critical_interval".into(),
        ));
    }
    if hb.check_interval.is_zero() {
        return Err(err(
            l,
            "check_interval",
            "heartbeat.check_interval must be above zero".into(),
        ));
    }
    if c.kernels.max_window.is_zero() {
        return Err(err(
            l,
            "max_window",
            "kernels.max_window must be above zero (e.g. \"60s\")".into(),
        ));
    }
    if let Err(e) = c.triggers.validate() {
        let at = match &e {
            crate::trigger::TriggerError::Config { trigger, .. } => format!("[triggers.{trigger}"),
            _ => "[triggers".to_owned(),
        };
        return Err(err(l, &at, e.to_string()));
    }
    let mut seen = HashSet::new();
    for k in &c.kernel {
        let at = format!("\"{}\"", k.name);
        if !valid_name(&k.name) {
            return Err(err(
                l,
                &at,
                format!(
                    "kernel name {:?} is not valid: use 1-64 lowercase letters, digits, '_' or '-'",
                    k.name
                ),
            ));
        }
        if RESERVED_NAMES.contains(&k.name.as_str()) {
            return Err(err(
                l,
                &at,
                format!(
                    "kernel name {:?} is reserved for the tree's own parts; choose another",
                    k.name
                ),
            ));
        }
        if !seen.insert(k.name.as_str()) {
            return Err(err(
                l,
                &at,
                format!(
                    "kernel name {:?} is used twice; names must be unique",
                    k.name
                ),
            ));
        }
        let (interval, timeout) = heartbeat_of(c, k);
        if timeout <= interval {
            return Err(err(
                l,
                &at,
                format!(
                    "kernel {}: heartbeat_timeout ({timeout:?}) must be longer than heartbeat_interval ({interval:?})",
                    k.name
                ),
            ));
        }
        let exec = k.kind == "exec";
        match k.isolation {
            Some(Isolation::Process) if !exec => {
                return Err(err(
                    l,
                    &at,
                    format!(
                        "kernel {}: isolation \"process\" is only for kind \"exec\"; use \"task\" or \"thread\"",
                        k.name
                    ),
                ))
            }
            Some(Isolation::Task | Isolation::Thread) if exec => {
                return Err(err(
                    l,
                    &at,
                    format!(
                        "kernel {}: kind \"exec\" always runs as a process; remove `isolation`",
                        k.name
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The effective heartbeat interval and timeout of a kernel.
pub fn heartbeat_of(c: &super::Config, k: &super::KernelConfig) -> (Duration, Duration) {
    let hb = &c.heartbeat;
    let (di, dt) = if k.critical {
        (hb.critical_interval, hb.critical_timeout)
    } else {
        (hb.interval, hb.timeout)
    };
    (
        k.heartbeat_interval.unwrap_or(di),
        k.heartbeat_timeout.unwrap_or(dt),
    )
}

#[cfg(test)]
mod tests {
    use super::super::load::{parse, ConfigSource};

    fn bad(text: &str) -> String {
        parse(text, ConfigSource::File("g.toml".into()))
            .expect_err("must be rejected")
            .0
    }

    #[test]
    fn duplicate_names_are_rejected_with_their_line() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\n[[kernel]]\nname = \"a\"\nkind = \"model\"\n");
        assert!(e.starts_with("g.toml:2:"), "{e}");
        assert!(e.contains("used twice"), "{e}");
    }

    #[test]
    fn reserved_names_are_rejected() {
        assert!(bad("[[kernel]]\nname = \"message_bus\"\nkind = \"model\"\n").contains("reserved"));
    }

    #[test]
    fn timeouts_shorter_than_intervals_are_rejected() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\nheartbeat_interval = \"10s\"\nheartbeat_timeout = \"1s\"\n");
        assert!(e.contains("must be longer"), "{e}");
    }

    #[test]
    fn process_isolation_needs_exec() {
        let e = bad("[[kernel]]\nname = \"a\"\nkind = \"model\"\nisolation = \"process\"\n");
        assert!(e.contains("only for kind \"exec\""), "{e}");
    }
}
