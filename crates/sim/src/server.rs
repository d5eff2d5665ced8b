//! The simulator process: configuration, the set of clusters, request statistics, and
//! the listener (plain HTTP or HTTPS with a generated CA) serving all clusters on one
//! port under `/clusters/{name}`.

use crate::cluster::{Cluster, StoreLimits};
use crate::kubeconfig::ClusterEndpoint;
use crate::workload::{self, WorkloadConfig};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding the listen address failed.
    #[error("binding {addr} failed")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Generating the TLS certificates failed.
    #[error("generating tls certificates failed")]
    Tls(#[source] crate::tls::TlsError),
}

/// Configuration of a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on (port 0 for any free port).
    pub listen: SocketAddr,
    /// Number of clusters, named `c1` … `cN`.
    pub clusters: usize,
    /// Serve HTTPS with a generated CA.
    pub tls: bool,
    /// Kubelet-like behaviour, when set.
    pub workload: Option<WorkloadConfig>,
    /// Store limits per cluster.
    pub limits: StoreLimits,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clusters: 1,
            tls: false,
            workload: None,
            limits: StoreLimits::default(),
            bookmark_interval: Duration::from_secs(10),
        }
    }
}

/// API verbs counted in statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// get
    Get,
    /// list
    List,
    /// watch
    Watch,
    /// create
    Create,
    /// update
    Update,
    /// patch
    Patch,
    /// delete
    Delete,
    /// deletecollection
    DeleteCollection,
}

const VERBS: [(Verb, &str); 8] = [
    (Verb::Get, "get"),
    (Verb::List, "list"),
    (Verb::Watch, "watch"),
    (Verb::Create, "create"),
    (Verb::Update, "update"),
    (Verb::Patch, "patch"),
    (Verb::Delete, "delete"),
    (Verb::DeleteCollection, "deletecollection"),
];

/// Requests served, by verb.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; 8],
}

impl Stats {
    /// Counts one request.
    pub fn count(&self, verb: Verb) {
        if let Some(i) = VERBS.iter().position(|(v, _)| *v == verb) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests of one verb so far.
    pub fn get(&self, verb: Verb) -> u64 {
        VERBS
            .iter()
            .position(|(v, _)| *v == verb)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }
}

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clusters: HashMap<String, Arc<Cluster>>,
    pub(crate) config: SimConfig,
    pub(crate) stats: Stats,
    pub(crate) admin_token: String,
    /// The listen address, for discovery's serverAddressByClientCIDRs.
    pub(crate) addr: String,
}

impl Shared {
    pub(crate) fn stats_json(&self) -> Value {
        let by_verb: serde_json::Map<String, Value> = VERBS
            .iter()
            .map(|(v, n)| ((*n).to_owned(), self.stats.get(*v).into()))
            .collect();
        let objects: usize = self.clusters.values().map(|c| c.lock().store.total()).sum();
        json!({"requests": by_verb, "clusters": self.clusters.len(), "objects": objects})
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// The CA certificate (PEM) when serving HTTPS.
    pub ca_pem: Option<String>,
    /// Token for the `/sim/` admin API.
    pub admin_token: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// Starts a simulator.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
        let tls = if config.tls {
            Some(crate::tls::generate().map_err(SimError::Tls)?)
        } else {
            None
        };
        let mut clusters = HashMap::new();
        for i in 1..=config.clusters {
            let name = format!("c{i}");
            let token = format!("sim-{}", uuid::Uuid::new_v4().simple());
            clusters.insert(name.clone(), Cluster::new(&name, &token, config.limits));
        }
        let mut tasks = Vec::new();
        if let Some(wl) = &config.workload {
            for cluster in clusters.values() {
                tasks.push(workload::spawn(Arc::clone(cluster), wl.clone()));
            }
        }
        let shared = Arc::new(Shared {
            clusters,
            config,
            stats: Stats::default(),
            admin_token: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            addr: addr.to_string(),
        });
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(Arc::clone(&t.server_config)));
        tasks.push(tokio::spawn(accept_loop(
            listener,
            acceptor,
            Arc::clone(&shared),
        )));
        Ok(Self {
            addr,
            ca_pem: tls.map(|t| t.ca_pem),
            admin_token: shared.admin_token.clone(),
            shared,
            tasks,
        })
    }

    /// The base URL of a cluster.
    pub fn server_url(&self, cluster: &str) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/clusters/{cluster}", self.addr)
    }

    /// All clusters with their URLs and tokens, in name order (c1, c2, …).
    pub fn endpoints(&self) -> Vec<ClusterEndpoint> {
        let mut names: Vec<&String> = self.shared.clusters.keys().collect();
        names.sort_by_key(|n| (n.len(), (*n).clone()));
        names
            .into_iter()
            .filter_map(|n| self.shared.clusters.get(n))
            .map(|c| ClusterEndpoint {
                name: c.name.clone(),
                server: self.server_url(&c.name),
                token: c.token.clone(),
            })
            .collect()
    }

    /// A cluster, for in-process use (fault injection, inspection).
    pub fn cluster(&self, name: &str) -> Option<Arc<Cluster>> {
        self.shared.clusters.get(name).cloned()
    }

    /// Request statistics and object counts, as JSON.
    pub fn stats(&self) -> Value {
        self.shared.stats_json()
    }

    /// Stops serving.
    pub fn shutdown(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                crate::http::handle(Arc::clone(&shared), req)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => builder.serve_connection(TokioIo::new(s), service).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "tls handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
