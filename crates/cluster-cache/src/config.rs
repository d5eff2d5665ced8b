//! Settings of one cluster cache: cluster identity, tracking method, resource filter and
//! timeouts.

use std::sync::Arc;
use std::time::Duration;

use keelson_model::tracking::TrackingMethod;

use crate::filter::ResourceFilter;

/// Default tracking label key.
pub const DEFAULT_TRACKING_LABEL: &str = keelson_model::annotations::APP_INSTANCE_LABEL;

/// Configuration of one [`crate::ClusterCache`].
#[derive(Debug, Clone)]
pub struct ClusterCacheConfig {
    /// Cluster name (used in notifications and matched by filter `clusters` globs).
    pub name: Arc<str>,
    /// API server URL (the `server` label of metrics; also matched by `clusters` globs).
    pub server: Arc<str>,
    /// Tracking method.
    pub tracking: TrackingMethod,
    /// Tracking label key.
    pub label_key: String,
    /// Which API resources are watched.
    pub filter: ResourceFilter,
    /// Time budget of one discovery (and server version) call.
    pub discovery_timeout: Duration,
    /// Delay between a CRD change and the re-discovery it triggers (coalesces bursts).
    pub rediscover_delay: Duration,
    /// Longest retry delay after a failed discovery.
    pub max_retry_delay: Duration,
    /// Page size of initial lists.
    pub page_size: u32,
}

impl ClusterCacheConfig {
    /// Defaults for a cluster: label tracking, default filter, 10 s discovery timeout.
    pub fn new(name: impl Into<Arc<str>>, server: impl Into<Arc<str>>) -> ClusterCacheConfig {
        ClusterCacheConfig {
            name: name.into(),
            server: server.into(),
            tracking: TrackingMethod::default(),
            label_key: DEFAULT_TRACKING_LABEL.to_string(),
            filter: ResourceFilter::default(),
            discovery_timeout: Duration::from_secs(10),
            rediscover_delay: Duration::from_millis(300),
            max_retry_delay: Duration::from_secs(30),
            page_size: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tracking_methods() {
        assert_eq!(TrackingMethod::parse("label"), Some(TrackingMethod::Label));
        assert_eq!(
            TrackingMethod::parse("annotation+label"),
            Some(TrackingMethod::AnnotationAndLabel)
        );
        assert_eq!(TrackingMethod::parse("other"), None);
    }
}
