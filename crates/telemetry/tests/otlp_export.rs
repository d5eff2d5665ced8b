//! OTLP span export end to end: a real OTLP/HTTP receiver on loopback gets the spans a
//! process emits, with their names, fields, parentage and the `service.name` resource.
//! One test per binary: the global subscriber can be installed only once per process.

use anyhow::{Context as _, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use keelson_telemetry::{TracingError, TracingSettings, init_tracing};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One POST the receiver got.
struct Received {
    request_line: String,
    content_type: String,
    body: Bytes,
}

/// Serves OTLP/HTTP on 127.0.0.1 from a runtime on its own thread (the exporter's
/// shutdown blocks the test's thread) and hands every request to the returned channel.
fn start_receiver() -> anyhow::Result<(SocketAddr, mpsc::Receiver<Received>)> {
    let (req_tx, req_rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addr_tx.send(listener.local_addr()?)?;
            // Every request is recorded, so a wrong method or path fails with a message.
            let app = Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let req_tx = req_tx.clone();
                    async move {
                        let content_type = headers
                            .get(header::CONTENT_TYPE)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let received = Received {
                            request_line: format!("{method} {}", uri.path()),
                            content_type,
                            body,
                        };
                        // An empty ExportTraceServiceResponse is an empty protobuf body.
                        match req_tx.send(received) {
                            Ok(()) => (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "application/x-protobuf")],
                            ),
                            Err(_) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                [(header::CONTENT_TYPE, "text/plain")],
                            ),
                        }
                    }
                },
            );
            axum::serve(listener, app).await?;
            anyhow::Ok(())
        })
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the receiver did not start")?;
    Ok((addr, req_rx))
}

fn string_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref() {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}

/// Every span of every request received within `timeout`, with its service name, until
/// the spans named in `wanted` have all arrived.
fn collect_spans(
    requests: &mpsc::Receiver<Received>,
    wanted: &[&str],
    timeout: Duration,
) -> anyhow::Result<Vec<(String, Span)>> {
    let deadline = Instant::now() + timeout;
    let mut spans = Vec::new();
    for _ in 0..100 {
        if wanted.iter().all(|name| {
            spans
                .iter()
                .any(|(_, span): &(String, Span)| span.name == *name)
        }) {
            return Ok(spans);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(received) = requests.recv_timeout(left) else {
            break;
        };
        ensure!(
            received.request_line == "POST /v1/traces",
            "got {}",
            received.request_line
        );
        ensure!(
            received.content_type == "application/x-protobuf",
            "content-type {:?}",
            received.content_type
        );
        ensure!(!received.body.is_empty(), "empty export body");
        let request = ExportTraceServiceRequest::decode(received.body)?;
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| string_attr(&resource.attributes, "service.name"))
                .unwrap_or_default()
                .to_owned();
            for scope_spans in resource_spans.scope_spans {
                spans.extend(
                    scope_spans
                        .spans
                        .into_iter()
                        .map(|span| (service.clone(), span)),
                );
            }
        }
    }
    let names: Vec<&str> = spans.iter().map(|(_, span)| span.name.as_str()).collect();
    bail!("wanted spans {wanted:?} within {timeout:?}, got {names:?}")
}

#[test]
fn spans_are_exported_over_otlp_http_with_the_service_name() -> anyhow::Result<()> {
    let (addr, requests) = start_receiver()?;
    let settings = TracingSettings {
        filter: "info".to_owned(),
        otlp_endpoint: Some(format!("http://{addr}")),
        service_name: "keelson-otlp-test".to_owned(),
    };
    let guard = init_tracing(&settings)?;
    assert!(guard.exports());

    // A second subscriber is refused, not silently ignored.
    assert!(matches!(
        init_tracing(&settings),
        Err(TracingError::Install { .. })
    ));

    {
        let reconcile = tracing::info_span!("reconcile", app = "guestbook");
        let _reconcile = reconcile.enter();
        let sync = tracing::info_span!("sync", app = "guestbook", sync_id = 7_u64);
        let _sync = sync.enter();
        tracing::info!("applying");
    }
    // Filtered out by `info`: never exported.
    tracing::debug_span!("too_verbose").in_scope(|| {});

    // Dropping the guard flushes the batch before returning.
    drop(guard);
    let spans = collect_spans(&requests, &["reconcile", "sync"], Duration::from_secs(15))?;

    for (service, span) in &spans {
        assert_eq!(service, "keelson-otlp-test", "span {}", span.name);
        assert_ne!(span.name, "too_verbose");
    }
    let find = |name: &str| {
        spans
            .iter()
            .map(|(_, span)| span)
            .find(|span| span.name == name)
            .with_context(|| format!("no span {name}"))
    };
    let reconcile = find("reconcile")?;
    let sync = find("sync")?;
    assert_eq!(string_attr(&reconcile.attributes, "app"), Some("guestbook"));
    assert_eq!(string_attr(&sync.attributes, "app"), Some("guestbook"));
    // tracing-opentelemetry exports u64 fields as strings (they may not fit an i64).
    assert_eq!(string_attr(&sync.attributes, "sync_id"), Some("7"));
    assert_eq!(sync.trace_id, reconcile.trace_id);
    assert_eq!(sync.parent_span_id, reconcile.span_id);
    assert!(
        sync.events.iter().any(|event| event.name == "applying"),
        "the event inside the span was not exported: {:?}",
        sync.events
    );
    Ok(())
}
