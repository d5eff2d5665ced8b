//! The crate's error type.

use std::time::Duration;

/// Errors of the cluster cache.
#[derive(Debug, thiserror::Error)]
pub enum ClusterCacheError {
    /// `resource.exclusions` or `resource.inclusions` is not valid YAML of the expected shape.
    #[error("parsing argocd-cm key {key}")]
    ParseFilter {
        /// The config map key.
        key: String,
        /// The YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A glob in a resource filter does not compile.
    #[error("compiling glob {glob:?} of a resource filter")]
    CompileGlob {
        /// The glob.
        glob: String,
        /// The glob error.
        #[source]
        source: globset::Error,
    },
    /// API discovery failed.
    #[error("discovering api resources")]
    Discover(#[source] kube::Error),
    /// API discovery did not answer in time.
    #[error("discovering api resources timed out after {0:?}")]
    DiscoverTimeout(Duration),
    /// Reading the server version failed.
    #[error("reading the server version")]
    ServerVersion(#[source] kube::Error),
    /// The cache did not sync in time.
    #[error("cluster cache of {cluster} not synced after {timeout:?}")]
    SyncTimeout {
        /// The cluster.
        cluster: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The cache was stopped.
    #[error("cluster cache of {0} is stopped")]
    Stopped(String),
}
