//! The HTTP server inside `grace serve`: health, dashboard, metrics, API.
//!
//! [`start`] binds (loopback by default) and serves until [`HttpServer::shutdown`].
//! Every error answer is JSON `{"error", "hint"}`; every POST needs the bearer token of
//! `<state>/token`.

mod config;
mod error;
mod health;
mod routes;
mod server;
mod token;

pub use config::HttpConfig;
pub use error::{ApiError, ErrorBody, HttpError};
pub use health::{assess, count_kernels, HealthReport, KernelCounts, KernelProblem};
pub use server::{bind_address, start, HttpServer};
pub use token::Token;
