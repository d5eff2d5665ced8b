//! The telemetry HTTP server: `/metrics` in the Prometheus text format from an injected
//! registry, `/healthz` (the process is alive) and `/readyz` (it is ready for work).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Errors of the telemetry server.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Binding the listen address failed.
    #[error("binding the telemetry address {addr} failed")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A readiness flag the process sets when it can serve.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the process is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AppState {
    registry: Registry,
    readiness: Readiness,
}

/// A running telemetry server.
#[derive(Debug)]
pub struct TelemetryServer {
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TelemetryServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until dropped.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
) -> Result<TelemetryServer, TelemetryError> {
    serve_with(addr, registry, readiness, Router::new()).await
}

/// Like [`serve`], with the process's own `routes` beside the telemetry ones.
pub async fn serve_with(
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
    routes: Router,
) -> Result<TelemetryServer, TelemetryError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(AppState {
            registry,
            readiness,
        })
        .merge(routes);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "telemetry server stopped");
        }
    });
    Ok(TelemetryServer { addr: bound, task })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut buf) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            buf,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string().into_bytes(),
        ),
    }
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("keelson_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let readiness = Readiness::default();
        let server = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            registry,
            readiness.clone(),
        )
        .await
        .unwrap();
        assert!(
            get_path(server.addr, "/metrics")
                .await
                .contains("keelson_test_total 1")
        );
        assert!(
            get_path(server.addr, "/healthz")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get_path(server.addr, "/readyz")
                .await
                .starts_with("HTTP/1.1 503")
        );
        readiness.set(true);
        assert!(
            get_path(server.addr, "/readyz")
                .await
                .starts_with("HTTP/1.1 200")
        );
    }
}
