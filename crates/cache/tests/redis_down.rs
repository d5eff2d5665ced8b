//! Redis unreachable or hung: every call still returns within its budget, as a miss or a
//! dropped write, counted as a Redis failure; the cache recovers when Redis answers again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use keelson_cache::{CacheConfig, ManifestCache, RedisConfig};
use keelson_testbed::{Redis, free_port};
use prometheus::Registry;

/// Upper bound for any single cache call in these tests (the Redis budget is 300 ms).
const CALL_BOUND: Duration = Duration::from_secs(1);

fn config(url: String) -> CacheConfig {
    CacheConfig {
        // No L1: every get goes to Redis.
        l1_max_bytes: 0,
        redis: Some(RedisConfig::Direct { url }),
        redis_timeout: Duration::from_millis(300),
        redis_connect_timeout: Duration::from_secs(1),
        ..CacheConfig::default()
    }
}

async fn timed<T>(what: &str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let took = started.elapsed();
    assert!(took < CALL_BOUND, "{what} took {took:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_means_quick_misses_and_counted_failures() -> anyhow::Result<()> {
    let port = free_port()?; // nothing listens here
    let cache = timed(
        "new",
        ManifestCache::new(
            config(format!("redis://127.0.0.1:{port}")),
            &Registry::new(),
        ),
    )
    .await?;
    for i in 0..10 {
        let key = format!("k{i}");
        timed("put", cache.put(&key, Bytes::from_static(b"v"))).await;
        assert_eq!(timed("get", cache.get(&key)).await, None);
        timed("invalidate", cache.invalidate(&key)).await;
    }
    let stats = cache.stats();
    assert_eq!(stats.redis_errors, 30);
    assert_eq!(stats.redis_requests_ok, 0);
    assert_eq!((stats.l2_hits, stats.l2_misses), (0, 10));
    assert!(!stats.redis_connected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_is_bounded_and_the_cache_recovers() -> anyhow::Result<()> {
    let mut redis = Redis::start()?;
    let cache = ManifestCache::new(config(redis.url()), &Registry::new()).await?;
    cache.put("before", Bytes::from_static(b"v0")).await;
    assert_eq!(cache.get("before").await, Some(Bytes::from_static(b"v0")));

    redis.process().pause()?;
    for i in 0..8 {
        let key = format!("during-{i}");
        timed("put while hung", cache.put(&key, Bytes::from_static(b"v"))).await;
        assert_eq!(timed("get while hung", cache.get(&key)).await, None);
    }
    let errors = cache.stats().redis_errors;
    assert!(errors >= 16, "{errors} failures counted");
    redis.process().resume()?;

    // Bounded wait for the background reconnect.
    let started = Instant::now();
    let mut recovered = false;
    for attempt in 0..100 {
        let key = format!("after-{attempt}");
        cache.put(&key, Bytes::from_static(b"v1")).await;
        if cache.get(&key).await == Some(Bytes::from_static(b"v1")) {
            recovered = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "no L2 hit {:?} after Redis resumed",
        started.elapsed()
    );
    assert!(cache.stats().redis_connected);
    Ok(())
}
