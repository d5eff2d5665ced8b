//! Two-level manifest cache for the repo-server: an in-process LRU bounded in bytes (L1) in
//! front of Redis reached directly or through Sentinel (L2), with zstd-compressed values and
//! a TTL. Redis being down costs cache misses and metrics, never a failed or stalled request.

mod codec;
mod config;
mod error;
mod link;
mod lru_bytes;
mod manifest_cache;
mod metrics;
mod redis_store;
mod sentinel;

pub use codec::CodecError;
pub use config::{
    CacheConfig, ConfigError, DEFAULT_INITIATOR, DEFAULT_KEY_PREFIX, DEFAULT_L1_MAX_BYTES,
    DEFAULT_MAX_VALUE_BYTES, DEFAULT_RECONNECT_MAX_BACKOFF, DEFAULT_RECONNECT_MIN_BACKOFF,
    DEFAULT_REDIS_CONNECT_TIMEOUT, DEFAULT_REDIS_TIMEOUT, DEFAULT_TTL, RedisConfig,
};
pub use error::CacheError;
pub use link::ConnectError;
pub use manifest_cache::{CacheStats, ManifestCache};
pub use sentinel::SentinelError;
