//! The errors of the HTTP area: why the server could not start ([`HttpError`]), and the
//! JSON error answer every handler returns ([`ApiError`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Another process listens on the port. Serve heals this (port_conflict playbook).
    #[error("port {port} on {addr} is already in use; stop the other process, or pass --port (0 picks a free port)")]
    PortInUse {
        /// The address that was asked for.
        addr: SocketAddr,
        /// Its port.
        port: u16,
    },
    /// The bind address is not an IP address.
    #[error(
        "http bind address {addr:?} is not an IP address; set [http] bind to e.g. \"127.0.0.1\""
    )]
    BadAddress {
        /// What was configured.
        addr: String,
    },
    /// Binding failed for another reason (permission, address not on this host).
    #[error("cannot listen on {addr}: {source}; choose another [http] bind or --port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The bearer token file could not be read or created.
    #[error("token file {path}: {source}; check the state directory's permissions")]
    Token {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The body of every error answer: what went wrong, and what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// How to fix it.
    pub hint: String,
}

/// An error answer: a 4xx/5xx status with an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with a status, a message and a hint.
    pub fn new(status: StatusCode, error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                hint: hint.into(),
            },
        }
    }

    /// 400.
    pub fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, hint)
    }

    /// 404.
    pub fn not_found(error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error, hint)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
