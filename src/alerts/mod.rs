//! Alerts: files under `alerts/`, `latest_notification.json`, webhook, command and
//! Alertmanager notifiers.
//!
//! [`raise`] is the one entry point; the watchdog and serve's parts both call it. Files
//! are written atomically and pruned to `[alerts] keep_files` / `keep_for`; notifiers
//! run in the background and their failures are logged, never raised again.

mod alertmanager;
mod config;
mod error;
pub mod http;
mod model;
mod notify;
mod raise;

pub use config::AlertsConfig;
pub use error::AlertError;
pub use model::{Alert, AlertFile, LatestNotification, Severity};
pub use notify::deliver;
pub use raise::raise;
