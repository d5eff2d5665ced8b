//! API discovery of one cluster: the resources to watch (preferred version of each group,
//! list+watch verbs, no subresources, filter applied), under a time budget.

use kube::Client;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};

use crate::config::ClusterCacheConfig;
use crate::error::ClusterCacheError;

/// A resource to watch.
#[derive(Debug, Clone)]
pub(crate) struct WatchedResource {
    pub resource: ApiResource,
    /// Whether objects are stored (false: watched only to trigger re-discovery).
    pub store: bool,
}

impl WatchedResource {
    /// Identity used to compare discoveries (group, kind, version, plural).
    pub fn id(&self) -> (String, String, String, String, bool) {
        let r = &self.resource;
        (
            r.group.clone(),
            r.kind.clone(),
            r.version.clone(),
            r.plural.clone(),
            self.store,
        )
    }
}

/// Whether a resource is the CRD kind (whose changes trigger re-discovery).
pub(crate) fn is_crd(r: &ApiResource) -> bool {
    r.group == "apiextensions.k8s.io" && r.kind == "CustomResourceDefinition"
}

/// Discovers the resources to watch and the server version.
pub(crate) async fn discover(
    client: &Client,
    config: &ClusterCacheConfig,
) -> Result<(Vec<WatchedResource>, String), ClusterCacheError> {
    let run = async {
        let version = client
            .apiserver_version()
            .await
            .map_err(ClusterCacheError::ServerVersion)?;
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .map_err(ClusterCacheError::Discover)?;
        Ok::<_, ClusterCacheError>((discovery, version.git_version))
    };
    let (discovery, version) = tokio::time::timeout(config.discovery_timeout, run)
        .await
        .map_err(|_| ClusterCacheError::DiscoverTimeout(config.discovery_timeout))??;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || !caps.supports_operation(verbs::WATCH) {
                continue;
            }
            if resource.plural.contains('/') {
                continue;
            }
            let excluded = config.filter.is_excluded(
                &resource.group,
                &resource.kind,
                &config.server,
                &config.name,
            );
            let crd = is_crd(&resource);
            if excluded && !crd {
                continue;
            }
            let _ = caps.scope == Scope::Cluster;
            out.push(WatchedResource {
                resource,
                store: !excluded,
            });
        }
    }
    Ok((out, version))
}
