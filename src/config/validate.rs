//! Checks a parsed configuration beyond its shape: timings that make sense, trigger
//! settings, and (in `kernels.rs`) the kernel tables. Each error names the file, the
//! line and column of the offending key, and the fix.

use std::ops::Range;
use std::time::Duration;

use super::load::{line_col, Loaded};
use super::spans::{Doc, Seg};
use super::ConfigError;

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

/// An error at `span` of the configuration text: `file:line:column: msg` (line 1,
/// column 1 when the place is not known).
pub(crate) fn at(
    l: &Loaded,
    span: Option<Range<usize>>,
    msg: impl std::fmt::Display,
) -> ConfigError {
    let (line, col) = span.map_or((1, 1), |s| line_col(&l.text, s.start));
    ConfigError(format!("{}:{line}:{col}: {msg}", l.source.display()))
}

/// Validates `l.config`.
pub fn validate(l: &Loaded) -> Result<(), ConfigError> {
    use Seg::Key as K;
    let doc = Doc::parse(&l.text);
    let c = &l.config;
    let hb = &c.heartbeat;
    let place = |paths: &[&[Seg<'_>]]| doc.first(paths);
    if hb.timeout <= hb.interval {
        return Err(at(
            l,
            place(&[&[K("heartbeat"), K("timeout")], &[K("heartbeat"), K("interval")]]),
            format!(
                "heartbeat.timeout ({:?}) must be longer than heartbeat.interval ({:?}); raise timeout or lower interval",
                hb.timeout, hb.interval
            ),
        ));
    }
    if hb.critical_timeout <= hb.critical_interval {
        return Err(at(
            l,
            place(&[
                &[K("heartbeat"), K("critical_timeout")],
                &[K("heartbeat"), K("critical_interval")],
            ]),
            format!(
                "heartbeat.critical_timeout ({:?}) must be longer than heartbeat.critical_interval ({:?})",
                hb.critical_timeout, hb.critical_interval
            ),
        ));
    }
    if hb.check_interval.is_zero() {
        return Err(at(
            l,
            place(&[&[K("heartbeat"), K("check_interval")]]),
            "heartbeat.check_interval must be above zero (e.g. \"1s\")",
        ));
    }
    if c.kernels.max_window.is_zero() {
        return Err(at(
            l,
            place(&[&[K("kernels"), K("max_window")]]),
            "kernels.max_window must be above zero (e.g. \"60s\")",
        ));
    }
    if c.http.bind.parse::<std::net::IpAddr>().is_err() {
        return Err(at(
            l,
            place(&[&[K("http"), K("bind")]]),
            format!(
                "[http] bind {:?} is not an IP address; use e.g. \"127.0.0.1\" or \"0.0.0.0\"",
                c.http.bind
            ),
        ));
    }
    if let Err((key, msg)) = c.alerts.validate() {
        return Err(at(l, place(&[&[K("alerts"), K(key)]]), msg));
    }
    let h = &c.http;
    for (key, bad, fix) in [
        (
            "max_connections",
            h.max_connections == 0,
            "at least 1 (default 512)",
        ),
        (
            "header_timeout",
            h.header_timeout.is_zero(),
            "above zero (e.g. \"10s\")",
        ),
        (
            "sample_interval",
            h.sample_interval.is_zero(),
            "above zero (e.g. \"1s\")",
        ),
    ] {
        if bad {
            return Err(at(
                l,
                place(&[&[K("http"), K(key)]]),
                format!("[http] {key} must be {fix}"),
            ));
        }
    }
    if let Err(e) = c.triggers.validate() {
        return Err(at(l, trigger_span(&doc, c, &e), e));
    }
    super::kernels::check_tables(l, &doc)
}

/// Where a `[triggers]` error is: the key in its section, else the same key at the top
/// of `[triggers]` (where sections inherit it from), else the section.
fn trigger_span(
    doc: &Doc<'_>,
    c: &super::Config,
    e: &crate::trigger::TriggerError,
) -> Option<Range<usize>> {
    use Seg::{Index as I, Key as K};
    let crate::trigger::TriggerError::Config { trigger, key, .. } = e else {
        return doc.span(&[K("triggers")]);
    };
    if trigger == "triggers" {
        return doc.span(&[K("triggers"), K(key)]);
    }
    if let Some(name) = trigger.strip_prefix("exec.") {
        // A name used twice is reported at its second use.
        let uses: Vec<usize> = (c.triggers.exec.iter().enumerate())
            .filter(|(_, x)| x.name == name)
            .map(|(i, _)| i)
            .collect();
        let i = if key == "name" {
            uses.last()
        } else {
            uses.first()
        };
        if let Some(&i) = i {
            return doc.span(&[K("triggers"), K("exec"), I(i), K(key)]);
        }
        return doc.span(&[K("triggers"), K("exec")]);
    }
    doc.first(&[
        &[K("triggers"), K(trigger), K(key)],
        &[K("triggers"), K(key)],
        &[K("triggers"), K(trigger)],
    ])
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
    fn heartbeat_timing_is_reported_at_its_key() {
        let e = bad("[heartbeat]\ninterval = \"90s\"\n");
        assert!(e.starts_with("g.toml:2:1: "), "{e}");
        let e = bad("[heartbeat]\ninterval = \"1s\"\n  timeout = \"1s\"\n");
        assert!(e.starts_with("g.toml:3:3: "), "{e}");
    }

    #[test]
    fn a_bind_address_that_is_not_an_ip_is_reported_at_its_key() {
        let e = bad("[http]\nport = 8000\nbind = \"localhost\"\n");
        assert!(e.starts_with("g.toml:3:1: "), "{e}");
    }

    #[test]
    fn http_limits_must_be_above_zero() {
        let e = bad("[http]\nport = 8000\nmax_connections = 0\n");
        assert!(e.starts_with("g.toml:3:1: "), "{e}");
        assert!(
            e.contains("[http] max_connections must be at least 1"),
            "{e}"
        );
        let e = bad("[http]\nsample_interval = \"0s\"\n");
        assert!(e.starts_with("g.toml:2:1: "), "{e}");
    }

    #[test]
    fn trigger_errors_are_reported_at_their_key() {
        let e = bad("[triggers]\n\n[triggers.api_timeout]\nmin_timeouts = 0\n");
        assert!(e.starts_with("g.toml:4:1: "), "{e}");
        let exec = "[[triggers.exec]]\nname = \"a\"\ncommand = \"true\"\nplaybook = \"x\"\n\n";
        let e = bad(&format!("{exec}{exec}"));
        assert!(e.starts_with("g.toml:7:1: "), "{e}");
        assert!(e.contains("used twice"), "{e}");
        let e = bad(&format!("{exec}[[triggers.exec]]\nname = \"b\"\ncommand = \"true\"\nplaybook = \"x\"\n  interval = \"0s\"\n"));
        assert!(e.starts_with("g.toml:10:3: "), "{e}");
        assert!(e.contains("[triggers.exec.b] interval"), "{e}");
    }
}
