//! Kube clients for destination clusters that speak HTTP/2 when the server offers it.
//!
//! kube-rs builds HTTP/1.1-only clients, so every open watch holds its own TLS
//! connection: a replica caching 170 clusters of ~30 watched kinds kept ~7,700
//! connections (and their buffers) open at the 50,000-app benchmark. client-go, and so
//! Argo CD, multiplexes every watch of a cluster over one HTTP/2 connection. This module
//! builds the same stack kube-rs does (base URI, auth, TLS from the kube `Config`) over
//! a hyper client with HTTP/2 enabled through ALPN; HTTP/1.1 stays the fallback. Written
//! here because kube-rs offers no switch for it, only the layers to assemble.

use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{Body, ConfigExt};
use tower::{BoxError, ServiceBuilder};

/// Pings on an idle HTTP/2 connection find a dead peer (the only signal a multiplexed
/// connection gets when a network path silently drops).
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection, and every watch on it,
/// is dropped and re-established.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect timeout when the cluster Secret's config sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for `config`: HTTP/2 with HTTP/1.1 fallback, or kube-rs's own client when a
/// proxy is configured (kube-rs handles proxies; this stack does not).
pub fn destination_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(
        config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
    ));
    // ALPN (h2, then http/1.1) is set by the connector builder below.
    let tls = config.rustls_client_config()?;
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = config.tls_server_name.as_ref() {
        let name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
            kube::Error::Service(format!("invalid tls server name {name}: {e}").into())
        })?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let connector = builder.enable_all_versions().wrap_connector(http);
    let hyper = HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build::<_, Body>(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace))
}
