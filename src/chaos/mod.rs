//! The chaos harness: scenarios that inject faults into a running Grace and measure
//! how fast it notices (MTTD) and recovers, against an SLO.
//!
//! - [`scenario`]: the YAML model (`chaos/*.yaml`) and its checks; [`builtin`]: the
//!   embedded scenarios and lookup by name or path.
//! - [`measure`]: the pure part: from what was observed, detection and recovery per
//!   fault, the SLO verdict and the resilience score.
//! - [`report`]: the JSON report, the summary table and the timeline picture (SVG).
//! - `runner` (with `inject`, `monitor`, `siege`, `conns`, `spawn`, `host`, `client`): carrying a
//!   scenario out against an instance, and undoing everything it did on every exit path.
//!
//! Architecture invariant: everything the harness creates (threads, memory, files,
//! sockets, stopped processes, spawned instances) is owned by a guard whose `Drop`
//! undoes it, so an error, a panic or Ctrl-C leaves nothing behind.

mod builtin;
mod client;
pub mod conns;
mod error;
pub mod guard;
pub mod host;
mod inject;
pub mod measure;
mod monitor;
pub mod progress;
pub mod report;
mod runner;
pub mod scenario;
pub mod siege;
mod spawn;

pub use builtin::{builtins, find, load, BUILTIN};
pub use client::{Client, Endpoint, HttpResponse};
pub use error::ChaosError;
pub use progress::{Event, Progress};
pub use runner::{run_scenarios, RunOptions, TargetSpec};
pub use scenario::Scenario;
pub use spawn::{merge_config, spawn_config, spawn_config_with};
