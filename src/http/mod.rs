//! The HTTP server inside `grace serve`: health, dashboard, metrics, API.

mod config;

pub use config::HttpConfig;
