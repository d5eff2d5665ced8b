//! Telemetry shared by Keelson's processes: the Prometheus registry each crate registers
//! its metrics into, the HTTP endpoints `/metrics`, `/healthz` and `/readyz`, and the
//! process-wide tracing subscriber with optional OTLP span export.

mod endpoints;
mod tracing_setup;

pub use endpoints::{Readiness, TelemetryError, TelemetryServer, serve, serve_with};
pub use prometheus::Registry;
pub use tracing_setup::{
    OTLP_TRACES_PATH, TracingError, TracingGuard, TracingSettings, init_tracing, otlp_traces_url,
};
