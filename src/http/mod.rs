//! The HTTP server inside `grace serve`: health, dashboard, metrics, API.
