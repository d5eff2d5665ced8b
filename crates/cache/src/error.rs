//! Errors of building a [`crate::ManifestCache`] (its operations never fail).

use crate::config::ConfigError;

/// Why a cache could not be built. Redis being unreachable is never one of them.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The configuration cannot work.
    #[error("validating the cache configuration")]
    ValidatingConfig(#[source] ConfigError),
    /// The metrics could not be registered (for example: a second cache on one registry).
    #[error("registering the cache metrics")]
    RegisteringMetrics(#[source] prometheus::Error),
}
