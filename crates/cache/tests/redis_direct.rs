//! L2 against one real `redis-server`: sharing between caches, TTL on every write, codec on
//! the wire, corrupt values, invalidation, stats and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use keelson_cache::{CacheConfig, ManifestCache, RedisConfig};
use keelson_testbed::{Redis, RespValue};
use prometheus::{Encoder, Registry};

fn config(redis: &Redis) -> CacheConfig {
    CacheConfig {
        redis: Some(RedisConfig::Direct { url: redis.url() }),
        ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    }
}

fn manifests(n: usize) -> Bytes {
    (0..n)
        .map(|i| format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"cm-{i}\"}}}}\n"))
        .collect::<String>()
        .into()
}

fn integer(reply: RespValue) -> i64 {
    match reply {
        RespValue::Integer(n) => n,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_share_values_through_redis_with_a_ttl() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let registry_a = Registry::new();
    let a = ManifestCache::new(config(&redis), &registry_a).await?;
    let b = ManifestCache::new(config(&redis), &Registry::new()).await?;
    let key = "https://git.example/repo|0123abcd|apps/guestbook|opts";
    let value = manifests(500);

    a.put(key, value.clone()).await;
    assert_eq!(
        b.get(key).await,
        Some(value.clone()),
        "L2 hit from the other cache"
    );
    assert_eq!(b.get(key).await, Some(value.clone()), "then an L1 hit");
    assert_eq!(b.get("absent").await, None);
    let stats = b.stats();
    assert_eq!((stats.l1_hits, stats.l1_misses), (1, 2));
    assert_eq!((stats.l2_hits, stats.l2_misses), (1, 1));
    assert_eq!(stats.l1_entries, 1);
    assert_eq!(stats.l1_bytes, (key.len() + value.len()) as u64);
    assert_eq!(stats.redis_errors, 0);
    assert!(stats.redis_connected);
    assert_eq!(a.stats().redis_requests_ok, 1);

    let redis_key = format!("keelson|{key}");
    let ttl = integer(redis.command(&["TTL", &redis_key])?);
    assert!((3590..=3600).contains(&ttl), "TTL is {ttl}");
    let stored = integer(redis.command(&["STRLEN", &redis_key])?);
    assert!(
        stored > 0 && (stored as usize) < value.len() / 4,
        "stored {stored} bytes for {} bytes of manifests: not compressed",
        value.len()
    );

    a.invalidate(key).await;
    assert_eq!(integer(redis.command(&["EXISTS", &redis_key])?), 0);
    let c = ManifestCache::new(config(&redis), &Registry::new()).await?;
    assert_eq!(c.get(key).await, None, "invalidated in L2");

    // A value another writer left in an unknown format is a miss, not a panic.
    redis.command(&["SET", "keelson|corrupt", "not a cache value"])?;
    assert_eq!(c.get("corrupt").await, None);
    assert_eq!(c.stats().l2_misses, 2);

    let mut text = Vec::new();
    prometheus::TextEncoder::new().encode(&registry_a.gather(), &mut text)?;
    let text = String::from_utf8(text)?;
    assert!(
        text.contains(
            r#"argocd_redis_request_total{failed="false",initiator="argocd-repo-server"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("keelson_cache_redis_connected 1"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_skip_l1_and_round_trip_through_redis() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let small_l1 = CacheConfig {
        l1_max_bytes: 1024 * 1024,
        ..config(&redis)
    };
    let a = ManifestCache::new(small_l1.clone(), &Registry::new()).await?;
    let b = ManifestCache::new(small_l1, &Registry::new()).await?;
    let big = manifests(40_000); // ~3 MiB: over 1/8 of the L1 budget, codec off-thread
    assert!(big.len() > 2 * 1024 * 1024);
    a.put("big", big.clone()).await;
    assert_eq!(
        a.stats().l1_entries,
        0,
        "oversize values are not kept in L1"
    );
    assert_eq!(b.get("big").await, Some(big.clone()));
    assert_eq!(b.get("big").await, Some(big));
    let stats = b.stats();
    assert_eq!((stats.l2_hits, stats.l1_hits, stats.l1_entries), (2, 0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_in_the_url_is_used_and_a_wrong_one_is_a_miss() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    redis.command(&["CONFIG", "SET", "requirepass", "s3cret"])?;
    let with = |url: String| CacheConfig {
        redis: Some(RedisConfig::Direct { url }),
        ..CacheConfig::default()
    };
    let port = redis.port();
    let good = ManifestCache::new(
        with(format!("redis://:s3cret@127.0.0.1:{port}/0")),
        &Registry::new(),
    )
    .await?;
    let other = ManifestCache::new(
        with(format!("redis://:s3cret@127.0.0.1:{port}/0")),
        &Registry::new(),
    )
    .await?;
    good.put("k", Bytes::from_static(b"v")).await;
    assert_eq!(other.get("k").await, Some(Bytes::from_static(b"v")));

    let wrong = ManifestCache::new(
        with(format!("redis://:wrong@127.0.0.1:{port}/0")),
        &Registry::new(),
    )
    .await?;
    let started = std::time::Instant::now();
    assert_eq!(wrong.get("k").await, None);
    wrong.put("k2", Bytes::from_static(b"v")).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let stats = wrong.stats();
    assert_eq!((stats.redis_errors, stats.redis_connected), (2, false));
    Ok(())
}
