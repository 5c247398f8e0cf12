//! Reading `grace.toml`: choosing the file, parsing it, and reporting errors with file,
//! line and reason.

use std::path::{Path, PathBuf};

use super::schema::Config;
use super::ConfigError;

/// The embedded default configuration (`grace init` writes it out).
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// The embedded default.
    Embedded,
}

impl ConfigSource {
    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::File(p) => Some(p),
            ConfigSource::Embedded => None,
        }
    }

    /// How to name it in messages.
    pub fn display(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded => "<embedded default>".to_owned(),
        }
    }
}

/// A parsed, validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Its source.
    pub source: ConfigSource,
    /// Its text, for locating lines in later validation errors.
    pub text: String,
}

/// Loads the configuration: `explicit` if given, else `grace.toml` in the working
/// directory if there is one, else the embedded default.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let source = match explicit {
        Some(p) => ConfigSource::File(p.to_path_buf()),
        None => {
            let local = PathBuf::from("grace.toml");
            if local.is_file() {
                ConfigSource::File(local)
            } else {
                ConfigSource::Embedded
            }
        }
    };
    let text = match &source {
        ConfigSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the configuration: {e}; check the path given to --config",
                p.display()
            ))
        })?,
        ConfigSource::Embedded => DEFAULT_TOML.to_owned(),
    };
    parse(&text, source)
}

/// Parses and validates configuration text.
pub fn parse(text: &str, source: ConfigSource) -> Result<Loaded, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ConfigError(format!(
            "{}:{line}:{col}: {}; see `grace init` for a commented example",
            source.display(),
            e.message().trim_end()
        ))
    })?;
    let mut loaded = Loaded {
        config,
        source,
        text: text.to_owned(),
    };
    // The playbook directory is relative to the configuration file: resolved once,
    // here, to an absolute path, so that every reader (check, serve) loads the same one.
    let pb = &mut loaded.config.playbooks;
    pb.dir = pb
        .resolve_dir(loaded.source.path())
        .map(|d| std::path::absolute(&d).unwrap_or(d));
    super::validate::validate(&loaded)?;
    Ok(loaded)
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The 1-based line of the first line containing `needle`, or 0.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let l = parse(DEFAULT_TOML, ConfigSource::Embedded).expect("default parses");
        assert!(l.config.kernel.len() >= 3);
    }

    #[test]
    fn unknown_key_is_reported_with_line() {
        let text = "[heartbeat]\ninterval = \"1s\"\nbogus = 1\n";
        let e = parse(text, ConfigSource::File("g.toml".into())).expect_err("rejected");
        assert!(e.0.starts_with("g.toml:3:"), "{}", e.0);
        assert!(e.0.contains("bogus"), "{}", e.0);
    }

    #[test]
    fn bad_duration_is_reported_with_line() {
        let text = "[heartbeat]\n\ninterval = \"fast\"\n";
        let e = parse(text, ConfigSource::File("g.toml".into())).expect_err("rejected");
        assert!(e.0.starts_with("g.toml:3:"), "{}", e.0);
    }
}
