//! Grace: a self-healing runtime for long-running services.
//!
//! Three layers, each in its own folder:
//!
//! 1. Kernel supervision in-process: [`kernel`] (the unit of work and its actor),
//!    [`supervisor`] (Erlang/OTP-style restart strategies and intensity) and [`tree`]
//!    (the supervision tree `grace serve` runs, and the registry of kernels by name).
//! 2. Triggers, incidents and playbooks: [`bus`], [`trigger`], [`incident`], [`playbook`],
//!    [`trust`], [`audit`], [`diagnostics`].
//! 3. The OS-process watchdog: [`watchdog`] with the kill switch in [`state`] and
//!    [`alerts`].
//!
//! [`serve`] and the `cli` functions are library code; the `grace` binary only parses
//! arguments and maps errors to exit codes.

pub mod alerts;
pub mod audit;
pub mod bus;
pub mod chaos;
pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod http;
pub mod incident;
pub mod kernel;
pub mod playbook;
pub mod serve;
pub mod state;
pub mod supervisor;
pub mod telemetry;
pub mod time;
pub mod tree;
pub mod trigger;
pub mod trust;
pub mod watchdog;
