//! The options of an `exec` kernel (its `options` table in `grace.toml`) and their checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What the options of an `exec` kernel look like, for error messages.
pub(crate) const EXEC_FIX: &str = "exec options are command = \"prog\", args = [..], \
env = { K = \"v\" }, cwd = \"dir\", stop_timeout = \"5s\", probe = { http = \
\"http://127.0.0.1:PORT/path\" } or { tcp = \"127.0.0.1:PORT\" } or { command = [\"prog\", \
\"arg\"] }, probe_timeout = \"2s\"";

/// Options of an `exec` kernel: an external command supervised like a supervisord
/// program.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecOptions {
    /// The program (a path, or a name looked up in `PATH`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables (the rest is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (default: serve's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// How long a graceful stop waits after SIGTERM before SIGKILL (default 5 s).
    #[serde(default = "default_stop_timeout", with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// A health probe run at every heartbeat tick; a failure withholds the heartbeat.
    #[serde(default)]
    pub probe: Option<Probe>,
    /// How long one probe may take (default 2 s).
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub probe_timeout: Duration,
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A health probe of an `exec` kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// `GET` this `http://host:port/path` URL; any 2xx or 3xx status is healthy.
    Http(String),
    /// Connect to this `host:port`.
    Tcp(String),
    /// Run this command (program and arguments); exit status 0 is healthy.
    Command(Vec<String>),
}

/// An HTTP probe's target, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpTarget {
    /// `host:port` to connect to.
    pub authority: String,
    /// The `Host` header.
    pub host: String,
    /// The request path.
    pub path: String,
}

impl HttpTarget {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!(
                "option probe.http: {url:?} is not an http:// URL (https is not supported; \
                 use a tcp probe, or a command probe running curl)"
            )
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || path.contains(char::is_whitespace) {
            return Err(format!(
                "option probe.http: {url:?} has no host or a bad path"
            ));
        }
        let (host, authority) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                (h.to_owned(), authority.to_owned())
            }
            Some(_) => return Err(format!("option probe.http: {url:?} has a bad port")),
            None => (authority.to_owned(), format!("{authority}:80")),
        };
        Ok(HttpTarget {
            authority,
            host,
            path: path.to_owned(),
        })
    }
}

impl ExecOptions {
    /// Options running `command` with the defaults.
    pub fn new(command: impl Into<String>) -> ExecOptions {
        ExecOptions {
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            stop_timeout: default_stop_timeout(),
            probe: None,
            probe_timeout: default_probe_timeout(),
        }
    }

    /// Sets the arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> ExecOptions {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the graceful stop timeout.
    pub fn stop_timeout(mut self, t: Duration) -> ExecOptions {
        self.stop_timeout = t;
        self
    }

    /// Sets a probe and its timeout.
    pub fn probe(mut self, probe: Probe, timeout: Duration) -> ExecOptions {
        self.probe = Some(probe);
        self.probe_timeout = timeout;
        self
    }

    /// Checks what serde cannot: a non-empty command, a usable probe, non-zero timeouts.
    pub fn validate(&self) -> Result<(), String> {
        if self.command.trim().is_empty() {
            return Err("option command is empty".to_owned());
        }
        if self.probe_timeout.is_zero() {
            return Err("option probe_timeout is zero".to_owned());
        }
        match &self.probe {
            Some(Probe::Http(url)) => HttpTarget::parse(url).map(|_| ()),
            Some(Probe::Tcp(addr)) => match addr.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(()),
                _ => Err(format!("option probe.tcp: {addr:?} is not host:port")),
            },
            Some(Probe::Command(argv)) if argv.is_empty() => {
                Err("option probe.command is an empty list".to_owned())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_parse_with_and_without_port_and_path() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/health").expect("valid");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.path, "/health");
        let t = HttpTarget::parse("http://localhost").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("localhost:80", "/")
        );
        assert!(HttpTarget::parse("https://x/").is_err());
        assert!(HttpTarget::parse("http://x:notaport/").is_err());
        assert!(HttpTarget::parse("http:///p").is_err());
    }

    #[test]
    fn options_deserialise_from_toml_with_defaults() {
        let t: toml::Table = toml::from_str(
            r#"command = "sleep"
               args = ["5"]
               probe = { tcp = "127.0.0.1:9" }"#,
        )
        .expect("toml");
        let o: ExecOptions = t.try_into().expect("options");
        assert_eq!(o.stop_timeout, Duration::from_secs(5));
        assert_eq!(o.probe, Some(Probe::Tcp("127.0.0.1:9".to_owned())));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn bad_probes_are_refused() {
        let o = ExecOptions::new("x").probe(Probe::Tcp("nohost".into()), Duration::from_secs(1));
        assert!(o.validate().is_err());
        let o = ExecOptions::new("x").probe(Probe::Command(vec![]), Duration::from_secs(1));
        assert!(o.validate().is_err());
        assert!(ExecOptions::new(" ").validate().is_err());
    }
}
