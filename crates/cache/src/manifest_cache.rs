//! [`ManifestCache`]: L1 (in-process LRU bounded in bytes) in front of L2 (Redis), with
//! values encoded by [`crate::codec`] on their way to and from Redis.
//!
//! Writes: `put` stores in L1 at once, then awaits the L2 `SET` — bounded by
//! `redis_timeout`, so a slow or absent Redis delays a put by at most that budget; a failed
//! write is counted and dropped (no queue, no retry). Reads: L1, then L2; an L2 hit fills L1.
//! A value that fails to decode is a miss.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::codec::{self, CodecError};
use crate::config::{CacheConfig, validate};
use crate::error::CacheError;
use crate::link::{LinkTimeouts, Target, error_chain};
use crate::lru_bytes::LruBytes;
use crate::metrics::Metrics;
use crate::redis_store::{Fetched, RedisStore};

/// Values at least this big are compressed or decompressed on the blocking pool.
const OFFLOAD_BYTES: usize = 128 * 1024;

/// Counters and sizes of one cache, as reported by [`ManifestCache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by L1.
    pub l1_hits: u64,
    /// Lookups L1 could not answer.
    pub l1_misses: u64,
    /// L1 misses answered by Redis.
    pub l2_hits: u64,
    /// L1 misses Redis did not answer (absent key, corrupt value, or a Redis failure).
    pub l2_misses: u64,
    /// Bytes of keys and values in L1.
    pub l1_bytes: u64,
    /// Entries in L1.
    pub l1_entries: u64,
    /// Redis commands that succeeded.
    pub redis_requests_ok: u64,
    /// Redis commands that failed, timed out or found no connection.
    pub redis_errors: u64,
    /// Whether a Redis connection is currently up.
    pub redis_connected: bool,
}

/// The two-level manifest cache; cheap to clone (all clones share one cache).
#[derive(Clone)]
pub struct ManifestCache {
    inner: Arc<Inner>,
}

struct Inner {
    l1: Mutex<LruBytes>,
    l2: Option<RedisStore>,
    metrics: Metrics,
    max_value_bytes: usize,
}

impl std::fmt::Debug for ManifestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Why a value could not go to or come from Redis (logged, never returned).
#[derive(Debug, thiserror::Error)]
enum ValueError {
    #[error("encoding a value for redis")]
    Encoding(#[source] CodecError),
    #[error("decoding a value from redis")]
    Decoding(#[source] CodecError),
    #[error("running the codec on the blocking pool")]
    RunningCodec(#[source] tokio::task::JoinError),
}

impl ManifestCache {
    /// Builds the cache and registers its metrics into `registry`. Redis is connected in the
    /// background: an unreachable Redis never makes this fail or wait.
    pub async fn new(
        config: CacheConfig,
        registry: &prometheus::Registry,
    ) -> Result<ManifestCache, CacheError> {
        validate(&config).map_err(CacheError::ValidatingConfig)?;
        let target = config
            .redis
            .as_ref()
            .map(Target::from_config)
            .transpose()
            .map_err(CacheError::ValidatingConfig)?;
        let metrics = Metrics::register(registry, &config.initiator)
            .map_err(CacheError::RegisteringMetrics)?;
        let timeouts = LinkTimeouts {
            call: config.redis_timeout,
            connect: config.redis_connect_timeout,
            min_backoff: config.reconnect_min_backoff,
            max_backoff: config
                .reconnect_max_backoff
                .max(config.reconnect_min_backoff),
        };
        let l2 = target.map(|target| {
            RedisStore::start(
                target,
                timeouts,
                config.ttl,
                config.key_prefix.clone(),
                metrics.clone(),
            )
        });
        Ok(ManifestCache {
            inner: Arc::new(Inner {
                l1: Mutex::new(LruBytes::new(config.l1_max_bytes, config.ttl)),
                l2,
                metrics,
                max_value_bytes: config.max_value_bytes,
            }),
        })
    }

    /// The value under `key`: from L1, else from Redis (then kept in L1). `None` on a miss
    /// or when Redis fails; waits on Redis at most `redis_timeout`.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let inner = &self.inner;
        let cached = inner.l1.lock().get(key, Instant::now());
        if let Some(value) = cached {
            inner.metrics.l1_hit.inc();
            return Some(value);
        }
        inner.metrics.l1_miss.inc();
        let l2 = inner.l2.as_ref()?;
        let stored = match l2.get(key).await {
            Fetched::Hit(stored) => stored,
            Fetched::Miss | Fetched::Failed => {
                inner.metrics.l2_miss.inc();
                return None;
            }
        };
        match decode(stored, inner.max_value_bytes).await {
            Ok(value) => {
                inner.metrics.l2_hit.inc();
                self.store_l1(key, value.clone());
                Some(value)
            }
            Err(e) => {
                inner.metrics.l2_miss.inc();
                tracing::warn!(key, error = %error_chain(&e), "unreadable cache value in redis, treating as a miss");
                None
            }
        }
    }

    /// Stores `value` under `key` in L1 and in Redis (with the TTL). Never fails; a Redis
    /// write that fails or takes longer than `redis_timeout` is dropped and counted.
    pub async fn put(&self, key: &str, value: Bytes) {
        self.store_l1(key, value.clone());
        let Some(l2) = self.inner.l2.as_ref() else {
            return;
        };
        match encode(value).await {
            Ok(stored) => {
                l2.set(key, stored).await;
            }
            Err(e) => {
                tracing::warn!(key, error = %error_chain(&e), "cache value not written to redis");
            }
        }
    }

    /// Removes `key` from L1 and from Redis (best effort, bounded like every Redis call).
    pub async fn invalidate(&self, key: &str) {
        {
            let mut l1 = self.inner.l1.lock();
            l1.remove(key);
            self.update_l1_gauges(&l1);
        }
        if let Some(l2) = self.inner.l2.as_ref() {
            l2.del(key).await;
        }
    }

    /// Current counters and sizes.
    pub fn stats(&self) -> CacheStats {
        let m = &self.inner.metrics;
        let (l1_bytes, l1_entries) = {
            let l1 = self.inner.l1.lock();
            (l1.bytes() as u64, l1.len() as u64)
        };
        CacheStats {
            l1_hits: m.l1_hit.get(),
            l1_misses: m.l1_miss.get(),
            l2_hits: m.l2_hit.get(),
            l2_misses: m.l2_miss.get(),
            l1_bytes,
            l1_entries,
            redis_requests_ok: m.redis_ok.get(),
            redis_errors: m.redis_failed.get(),
            redis_connected: m.redis_connected.get() == 1,
        }
    }

    /// Whether a Redis is configured (L2 exists).
    pub fn has_redis(&self) -> bool {
        self.inner.l2.is_some()
    }

    fn store_l1(&self, key: &str, value: Bytes) {
        let mut l1 = self.inner.l1.lock();
        l1.insert(key, value, Instant::now());
        self.update_l1_gauges(&l1);
    }

    fn update_l1_gauges(&self, l1: &LruBytes) {
        let m = &self.inner.metrics;
        m.l1_bytes
            .set(i64::try_from(l1.bytes()).unwrap_or(i64::MAX));
        m.l1_entries
            .set(i64::try_from(l1.len()).unwrap_or(i64::MAX));
    }
}

async fn encode(value: Bytes) -> Result<Vec<u8>, ValueError> {
    if value.len() < OFFLOAD_BYTES {
        return codec::encode(&value).map_err(ValueError::Encoding);
    }
    tokio::task::spawn_blocking(move || codec::encode(&value))
        .await
        .map_err(ValueError::RunningCodec)?
        .map_err(ValueError::Encoding)
}

async fn decode(stored: Vec<u8>, max_bytes: usize) -> Result<Bytes, ValueError> {
    if stored.len() < OFFLOAD_BYTES / 4 {
        return codec::decode(&stored, max_bytes).map_err(ValueError::Decoding);
    }
    tokio::task::spawn_blocking(move || codec::decode(&stored, max_bytes))
        .await
        .map_err(ValueError::RunningCodec)?
        .map_err(ValueError::Decoding)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn l1_only_cache_counts_hits_and_misses() {
        let registry = prometheus::Registry::new();
        let cache = ManifestCache::new(
            CacheConfig {
                l1_max_bytes: 8 * 1024,
                ..CacheConfig::default()
            },
            &registry,
        )
        .await
        .unwrap();
        assert!(!cache.has_redis());
        assert_eq!(cache.get("a").await, None);
        cache.put("a", Bytes::from_static(b"manifests")).await;
        assert_eq!(cache.get("a").await, Some(Bytes::from_static(b"manifests")));
        // Over an eighth of the budget: not kept.
        cache.put("big", Bytes::from(vec![0u8; 2000])).await;
        assert_eq!(cache.get("big").await, None);
        cache.invalidate("a").await;
        assert_eq!(cache.get("a").await, None);
        let stats = cache.stats();
        assert_eq!(stats.l1_hits, 1);
        assert_eq!(stats.l1_misses, 3);
        assert_eq!(
            (stats.l2_hits, stats.l2_misses, stats.redis_errors),
            (0, 0, 0)
        );
        assert_eq!((stats.l1_entries, stats.l1_bytes), (0, 0));
    }
}
