//! The chaos harness's error type: what went wrong, where, and how to fix it.

use std::path::PathBuf;

/// Why a chaos scenario could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// A scenario file is not valid YAML or does not have the scenario's shape.
    #[error("chaos scenario {file}, line {line}, column {column}: {message}; `grace chaos list` shows the built-in scenarios as examples")]
    Parse {
        /// The file (or `<built-in NAME>`).
        file: String,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A scenario parsed but is not consistent.
    #[error("chaos scenario {file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Neither a built-in scenario nor a file.
    #[error("no chaos scenario named {name:?}: not a built-in ({available}) and no such file; pass a built-in name or the path of a YAML file")]
    UnknownScenario {
        /// What was asked for.
        name: String,
        /// The built-in names.
        available: String,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP call to the target failed.
    #[error("HTTP {method} {url}: {message}")]
    Http {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The target instance is not usable (no token, no serve.json, not healthy).
    #[error("chaos target: {0}")]
    Target(String),
    /// The harness could not start or stop its own instance.
    #[error("chaos --spawn: {0}")]
    Spawn(String),
    /// A fault names something that does not exist on this instance.
    #[error("unsupported fault target: {0}")]
    UnsupportedTarget(String),
    /// The run was interrupted (Ctrl-C); everything was cleaned up.
    #[error("interrupted: injection stopped and everything the harness created was undone")]
    Interrupted,
    /// A fault could not be injected.
    #[error("cannot inject {fault}: {message}")]
    Inject {
        /// The fault.
        fault: String,
        /// Why.
        message: String,
    },
}

impl ChaosError {
    /// Whether the error is the user's to fix in how they called the harness (a bad or
    /// unknown scenario): exit status 2 rather than 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ChaosError::Parse { .. }
                | ChaosError::Invalid { .. }
                | ChaosError::UnknownScenario { .. }
        )
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChaosError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
