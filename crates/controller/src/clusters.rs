//! The destination clusters the controller knows: cluster Secrets parsed into clients,
//! the implicit in-cluster destination, and one live-state cache per cluster, started on
//! first use and restarted when its Secret changes.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use keelson_cluster_cache::{
    CacheMetrics, ChangeSink, ClusterCache, ClusterCacheConfig, ResourceFilter,
};
use keelson_model::ApplicationDestination;
use keelson_model::cluster_secret::ClusterSpec;
use keelson_model::tracking::TrackingMethod;
use keelson_sync::KubeOps;
use parking_lot::RwLock;

use crate::error::ClusterError;

/// The in-cluster destination URL.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The in-cluster destination name.
pub const IN_CLUSTER_NAME: &str = "in-cluster";

/// A resolved destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Server URL as known to the registry (the key of its cache).
    pub server: String,
    /// Cluster name.
    pub name: String,
}

/// One destination cluster with a running cache.
pub struct ClusterEntry {
    /// Server URL.
    pub server: String,
    /// Cluster name.
    pub name: String,
    /// Live-state cache.
    pub cache: ClusterCache,
    /// Sync writes (kind discovery cached per cluster).
    pub ops: Arc<KubeOps>,
}

impl std::fmt::Debug for ClusterEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterEntry")
            .field("server", &self.server)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How caches are configured.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Tracking method.
    pub tracking: TrackingMethod,
    /// Tracking label key.
    pub label_key: String,
    /// Resource inclusions/exclusions.
    pub filter: ResourceFilter,
}

#[derive(Default)]
struct Inner {
    /// Parsed cluster Secrets by normalized server URL.
    specs: HashMap<String, ClusterSpec>,
    /// Secret name → server, to handle deletions.
    secrets: HashMap<String, String>,
    /// Cluster name → server: every app resolves its destination on every claim round,
    /// so a name must not cost a scan of all clusters.
    names: HashMap<String, String>,
    /// Running caches by normalized server URL.
    entries: HashMap<String, Arc<ClusterEntry>>,
}

impl Inner {
    /// Drops the spec, name and running cache of `server`.
    fn forget(&mut self, server: &str) {
        if let Some(spec) = self.specs.remove(server)
            && self.names.get(&spec.name).is_some_and(|s| s == server)
        {
            self.names.remove(&spec.name);
        }
        self.entries.remove(server);
    }
}

/// Known clusters and their caches.
pub struct ClusterRegistry {
    local: kube::Client,
    settings: CacheSettings,
    metrics: Arc<CacheMetrics>,
    sink: Arc<dyn ChangeSink>,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for ClusterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRegistry").finish_non_exhaustive()
    }
}

fn normalize(server: &str) -> String {
    server.trim().trim_end_matches('/').to_owned()
}

impl ClusterRegistry {
    /// A registry whose in-cluster destination uses `local`.
    pub fn new(
        local: kube::Client,
        settings: CacheSettings,
        metrics: Arc<CacheMetrics>,
        sink: Arc<dyn ChangeSink>,
    ) -> Self {
        ClusterRegistry {
            local,
            settings,
            metrics,
            sink,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Adds or updates a cluster from its Secret; a changed Secret restarts the cache.
    /// Returns whether anything changed.
    pub fn upsert_secret(&self, secret: &Secret) -> Result<bool, ClusterError> {
        let spec =
            ClusterSpec::from_secret(secret).map_err(|source| ClusterError::ParseSecret {
                source: Box::new(source),
            })?;
        let server = normalize(&spec.server);
        let mut inner = self.inner.write();
        let mut changed = false;
        if let Some(old) = inner.secrets.insert(spec.secret.clone(), server.clone())
            && old != server
        {
            inner.forget(&old);
            changed = true;
        }
        if inner.specs.get(&server) != Some(&spec) {
            inner.forget(&server);
            if !spec.name.is_empty() {
                inner.names.insert(spec.name.clone(), server.clone());
            }
            inner.specs.insert(server, spec);
            changed = true;
        }
        Ok(changed)
    }

    /// Forgets the cluster of a deleted Secret (`namespace/name`).
    pub fn remove_secret(&self, secret: &str) -> Option<String> {
        let mut inner = self.inner.write();
        let server = inner.secrets.remove(secret)?;
        inner.forget(&server);
        Some(server)
    }

    /// Resolves an Application destination (server URL or cluster name).
    pub fn resolve(&self, dest: &ApplicationDestination) -> Result<Destination, ClusterError> {
        let inner = self.inner.read();
        if let Some(name) = dest.name().filter(|n| !n.is_empty()) {
            let named = inner
                .names
                .get(name)
                .and_then(|server| inner.specs.get(server));
            // Two Secrets may carry one name; the index keeps the last, a scan finds
            // another after that one went.
            if let Some(spec) = named.or_else(|| inner.specs.values().find(|s| s.name == name)) {
                return Ok(Destination {
                    server: normalize(&spec.server),
                    name: spec.name.clone(),
                });
            }
            if name == IN_CLUSTER_NAME {
                return Ok(Destination {
                    server: IN_CLUSTER_SERVER.to_owned(),
                    name: IN_CLUSTER_NAME.to_owned(),
                });
            }
            return Err(ClusterError::UnknownName {
                name: name.to_owned(),
            });
        }
        let Some(server) = dest.server().filter(|s| !s.is_empty()) else {
            return Err(ClusterError::NoDestination);
        };
        let server = normalize(server);
        if let Some(spec) = inner.specs.get(&server) {
            let name = if spec.name.is_empty() {
                server.clone()
            } else {
                spec.name.clone()
            };
            return Ok(Destination { server, name });
        }
        if server == IN_CLUSTER_SERVER {
            return Ok(Destination {
                server,
                name: IN_CLUSTER_NAME.to_owned(),
            });
        }
        Err(ClusterError::UnknownServer { server })
    }

    /// The running entry of a cluster, started now if needed.
    pub fn entry(&self, server: &str) -> Result<Arc<ClusterEntry>, ClusterError> {
        let server = normalize(server);
        if let Some(e) = self.inner.read().entries.get(&server) {
            return Ok(e.clone());
        }
        let mut inner = self.inner.write();
        if let Some(e) = inner.entries.get(&server) {
            return Ok(e.clone());
        }
        let (name, client) = match inner.specs.get(&server) {
            Some(spec) if !(spec.is_in_cluster() && spec.config.bearer_token.is_none()) => {
                let config = spec
                    .to_kube_config()
                    .map_err(|source| ClusterError::Config {
                        server: server.clone(),
                        source: Box::new(source),
                    })?;
                let client =
                    crate::destination_client::destination_client(config).map_err(|source| {
                        ClusterError::Client {
                            server: server.clone(),
                            source,
                        }
                    })?;
                (spec.display_name().to_owned(), client)
            }
            Some(spec) => (spec.display_name().to_owned(), self.local.clone()),
            None if server == IN_CLUSTER_SERVER => (IN_CLUSTER_NAME.to_owned(), self.local.clone()),
            None => return Err(ClusterError::UnknownServer { server }),
        };
        let mut config = ClusterCacheConfig::new(name.clone(), server.clone());
        config.tracking = self.settings.tracking;
        config.label_key = self.settings.label_key.clone();
        config.filter = self.settings.filter.clone();
        let cache = ClusterCache::start(
            client.clone(),
            config,
            self.metrics.clone(),
            self.sink.clone(),
        );
        let entry = Arc::new(ClusterEntry {
            server: server.clone(),
            name,
            ops: Arc::new(KubeOps::new(client)),
            cache,
        });
        inner.entries.insert(server, entry.clone());
        Ok(entry)
    }

    /// The registered clusters (from Secrets).
    pub fn specs(&self) -> Vec<ClusterSpec> {
        self.inner.read().specs.values().cloned().collect()
    }

    /// Stops the caches of clusters for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.inner.write().entries.retain(|server, _| keep(server));
    }
}
