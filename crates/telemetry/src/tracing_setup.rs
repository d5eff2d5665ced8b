//! The process-wide tracing subscriber: an `EnvFilter`, a human-readable log on stderr and,
//! when an OTLP endpoint is configured, span export over OTLP/HTTP (protobuf).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, ParseError, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

/// The path OTLP/HTTP receivers serve traces on, appended to the base endpoint.
pub const OTLP_TRACES_PATH: &str = "/v1/traces";

/// How long one export request may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dropping the guard waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Crates of the exporter's own HTTP stack: their spans are never exported, so an export
/// cannot produce spans that need exporting.
const EXPORTER_TARGETS: [&str; 6] = ["opentelemetry", "reqwest", "hyper", "h2", "tower", "rustls"];

/// What the process-wide subscriber logs and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingSettings {
    /// Filter in `EnvFilter` syntax (`info`, `keelson_controller=debug,info`, …); applies to
    /// the log and to exported spans alike.
    pub filter: String,
    /// Base OTLP/HTTP endpoint (`http://127.0.0.1:4318`, the meaning of
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); spans are posted to `<endpoint>/v1/traces`. `None`
    /// exports nothing.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of exported spans (`keelson-controller`, …).
    pub service_name: String,
}

/// Errors of installing the tracing subscriber.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    /// The filter is not valid `EnvFilter` syntax.
    #[error("parsing the log filter {filter:?} failed")]
    ParseFilter {
        /// The filter.
        filter: String,
        /// The cause.
        #[source]
        source: ParseError,
    },
    /// The OTLP endpoint is not an absolute http(s) URL.
    #[error("the OTLP endpoint {endpoint:?} is not an absolute http or https URL")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
    },
    /// Building the OTLP span exporter failed.
    #[error("building the OTLP span exporter for {endpoint} failed")]
    BuildExporter {
        /// The traces URL.
        endpoint: String,
        /// The cause.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Another global subscriber is already installed.
    #[error("installing the global tracing subscriber failed")]
    Install {
        /// The cause.
        #[source]
        source: TryInitError,
    },
}

/// Keeps span export running; dropping it exports the spans still buffered and shuts the
/// exporter down (bounded by a timeout). Hold it for the whole life of the process.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Whether spans are exported over OTLP.
    pub fn exports(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // The blocking HTTP client must neither run nor be dropped on an async runtime's
        // thread, and the guard may be dropped on one: shut down on a thread of our own.
        let shutdown = std::thread::Builder::new()
            .name("otlp-shutdown".to_owned())
            .spawn(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        match shutdown.map(std::thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("shutting down OTLP span export failed: {err}"),
            Ok(Err(_)) => eprintln!("shutting down OTLP span export panicked"),
            Err(err) => eprintln!("starting the OTLP shutdown thread failed: {err}"),
        }
    }
}

/// The URL spans are posted to for the base endpoint `endpoint`.
pub fn otlp_traces_url(endpoint: &str) -> Result<String, TracingError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let invalid = || TracingError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
    };
    let uri: http::Uri = trimmed.parse().map_err(|_| invalid())?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(format!("{trimmed}{OTLP_TRACES_PATH}")),
        _ => Err(invalid()),
    }
}

/// Installs the process-wide subscriber: `settings.filter`, the log on stderr and, when
/// `settings.otlp_endpoint` is set, OTLP/HTTP span export in batches from a background
/// thread. Call once, early in `main`, and keep the guard until the process ends. Installs
/// rustls' ring crypto provider as the process default if none is installed yet (https
/// endpoints need one).
pub fn init_tracing(settings: &TracingSettings) -> Result<TracingGuard, TracingError> {
    let filter =
        EnvFilter::try_new(&settings.filter).map_err(|source| TracingError::ParseFilter {
            filter: settings.filter.clone(),
            source,
        })?;
    let provider = settings
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(endpoint, &settings.service_name))
        .transpose()?;
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("keelson"))
            .with_filter(filter_fn(|meta| {
                !EXPORTER_TARGETS
                    .iter()
                    .any(|target| meta.target().starts_with(target))
            }))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(otel_layer)
        .try_init()
        .map_err(|source| TracingError::Install { source })?;
    Ok(TracingGuard { provider })
}

/// A tracer provider exporting batches of spans to the base endpoint `endpoint`.
fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TracingError> {
    let url = otlp_traces_url(endpoint)?;
    // reqwest's rustls without a bundled provider needs a process default to build.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| TracingError::BuildExporter {
            endpoint: url,
            source,
        })?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_to_the_base_endpoint() -> Result<(), TracingError> {
        assert_eq!(
            otlp_traces_url("http://127.0.0.1:4318")?,
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            otlp_traces_url("https://collector.example:4318/otlp/")?,
            "https://collector.example:4318/otlp/v1/traces"
        );
        Ok(())
    }

    #[test]
    fn traces_url_rejects_relative_and_non_http_endpoints() {
        for endpoint in ["127.0.0.1:4318", "/v1/traces", "grpc://x:4317", ""] {
            assert!(
                matches!(
                    otlp_traces_url(endpoint),
                    Err(TracingError::InvalidEndpoint { .. })
                ),
                "{endpoint} accepted"
            );
        }
    }
}
