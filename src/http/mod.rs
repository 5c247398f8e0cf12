//! The HTTP server inside `grace serve`: health, the operator dashboard (JSON and page),
//! Prometheus metrics, the kernel API and the chaos harness's fault injection.
//!
//! [`start`] binds (loopback by default) and serves until [`HttpServer::shutdown`].
//! Every error answer is JSON `{"error", "hint"}` with a 4xx/5xx status (hyper's own
//! answers to unparsable requests included, [`wire`]); connections are limited
//! ([`conns`]); every POST
//! needs `Authorization: Bearer <token>` with the token of `<state>/token`; request
//! bodies are size-limited and requests time-limited.
//!
//! | path | does |
//! | --- | --- |
//! | `GET /health` | liveness: 200 while serve answers; JSON verdict `healthy`/`degraded` with `reasons` |
//! | `GET /ready` | readiness: the same body, 200 healthy / 503 degraded |
//! | `GET /` | the operator page (self-contained HTML, polls the JSON endpoints) |
//! | `GET /operator/dashboard` | the operator JSON |
//! | `GET /metrics` | Prometheus: OpenMetrics when asked for, else the text format 0.0.4 |
//! | `GET /api/kernels` | every kernel's status |
//! | `GET /api/incidents?open=&limit=` | incidents, newest first, with an MTTR summary |
//! | `GET /api/timeline` | restarts (kept in `restarts.jsonl`, across serve's restarts) and incidents over time |
//! | `POST /api/kernels/{name}/restart` | restart through the kernel's supervisor |
//! | `POST /api/chaos/kernels/{name}/{panic,hang,spin,error,kill,stop}` | chaos only: kill is a crash the supervisor repairs, stop keeps it down |
//! | `POST /api/chaos/errors`, `POST /api/chaos/latency` | chaos only |

mod api;
mod chaos;
mod collector;
mod config;
mod conns;
mod dashboard;
mod error;
mod exposition;
mod facts;
mod health;
mod kernel;
mod metrics;
mod middleware;
mod readings;
mod restart_history;
mod routes;
mod samples;
mod server;
mod signals;
mod token;
mod wire;

pub use api::valid_name;
pub use collector::Tallies;
pub use config::HttpConfig;
pub use conns::ConnFigures;
pub use error::{ApiError, ErrorBody, HttpError};
pub use health::{
    assess, count_kernels, Context as HealthContext, HealthReport, IncidentBrief, KernelCounts,
    KernelFacts, KernelProblem, OpenCounts,
};
pub use kernel::HttpKernel;
pub use readings::WatchdogFigures;
pub use restart_history::{RestartHistory, RestartPoint};
pub use samples::{HostSample, ProcessSample};
pub use server::{bind_address, start, HttpServer};
pub use signals::{AddedLatency, ApiStats, ApiSummary};
pub use token::Token;
