//! Telemetry shared by Keelson's processes: the Prometheus registry each crate registers
//! its metrics into, and the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.

mod endpoints;

pub use endpoints::{Readiness, TelemetryError, TelemetryServer, serve};
pub use prometheus::Registry;
