//! Redis behind three real sentinels: the master is killed while a task streams puts and
//! gets; every call returns within its bound (misses allowed), and after the failover the
//! cache writes to and reads from the new master.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keelson_cache::{CacheConfig, ManifestCache, RedisConfig};
use keelson_testbed::{RespValue, SentinelGroup, resp_command};
use prometheus::Registry;

const MASTER: &str = "keelson-cache";

/// Upper bound for any single cache call (the Redis budget is 500 ms).
const CALL_BOUND: Duration = Duration::from_millis(1500);

fn config(group: &SentinelGroup, l1_max_bytes: usize) -> CacheConfig {
    config_with_password(group, l1_max_bytes, None)
}

fn config_with_password(
    group: &SentinelGroup,
    l1_max_bytes: usize,
    password: Option<&str>,
) -> CacheConfig {
    CacheConfig {
        l1_max_bytes,
        redis: Some(RedisConfig::Sentinel {
            sentinels: group.sentinel_addrs(),
            master_name: MASTER.to_string(),
            password: password.map(str::to_string),
            sentinel_password: None,
            db: 0,
        }),
        ..CacheConfig::default()
    }
}

/// What the streaming task saw.
#[derive(Debug, Default)]
struct StreamReport {
    iterations: usize,
    l2_hits: usize,
    slowest: Duration,
}

/// Puts through `writer` and reads back through `reader` (no L1), distinct keys, until
/// `stop` is set, 30 s pass or 2,000 iterations are done.
async fn stream(
    writer: ManifestCache,
    reader: ManifestCache,
    stop: Arc<AtomicBool>,
) -> StreamReport {
    let started = Instant::now();
    let mut report = StreamReport::default();
    for i in 0..2000 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let key = format!("stream-{i}");
        let value = Bytes::from(format!("manifests for {i}"));
        let t = Instant::now();
        writer.put(&key, value.clone()).await;
        report.slowest = report.slowest.max(t.elapsed());
        let t = Instant::now();
        let got = reader.get(&key).await;
        report.slowest = report.slowest.max(t.elapsed());
        if let Some(v) = got {
            assert_eq!(v, value, "a hit must return what was written");
            report.l2_hits += 1;
        }
        report.iterations += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_under_a_stream_of_requests() -> anyhow::Result<()> {
    let mut group = tokio::task::block_in_place(|| SentinelGroup::start(MASTER, 1, 3))?;
    let old_master = group.master_addr()?;
    let writer = ManifestCache::new(config(&group, 64 * 1024 * 1024), &Registry::new()).await?;
    let reader = ManifestCache::new(config(&group, 0), &Registry::new()).await?;
    writer.put("warm", Bytes::from_static(b"up")).await;
    assert_eq!(reader.get("warm").await, Some(Bytes::from_static(b"up")));

    let stop = Arc::new(AtomicBool::new(false));
    let streaming = tokio::spawn(stream(writer.clone(), reader.clone(), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed = tokio::task::block_in_place(|| group.kill_master())?;
    assert_eq!(killed, old_master);
    let new_master =
        tokio::task::block_in_place(|| group.wait_for_failover(Duration::from_secs(30)))?;
    assert_ne!(new_master, old_master);
    // Keep streaming a little on the new master, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let report = tokio::time::timeout(Duration::from_secs(35), streaming).await??;
    assert!(report.iterations > 20, "{report:?}");
    assert!(report.slowest < CALL_BOUND, "{report:?}");
    assert!(report.l2_hits > 0, "{report:?}");
    let writer_stats = writer.stats();
    eprintln!(
        "stream: {report:?}\nwriter: {writer_stats:?}\nreader: {:?}",
        reader.stats()
    );
    assert!(
        writer_stats.redis_errors > 0,
        "the failover went unnoticed: {writer_stats:?}"
    );

    // Recovery: a put through the old cache is readable by a fresh cache from the new master.
    let fresh = ManifestCache::new(config(&group, 64 * 1024 * 1024), &Registry::new()).await?;
    let started = Instant::now();
    let mut recovered = None;
    for attempt in 0..200 {
        let key = format!("after-failover-{attempt}");
        let value = Bytes::from(format!("value {attempt}"));
        writer.put(&key, value.clone()).await;
        if fresh.get(&key).await == Some(value) {
            recovered = Some(key);
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = recovered.unwrap_or_else(|| {
        panic!(
            "no L2 hit {:?} after the failover: {:?}",
            started.elapsed(),
            writer.stats()
        )
    });
    let fresh_stats = fresh.stats();
    assert!(
        fresh_stats.l2_hits >= 1 && fresh_stats.l1_hits == 0,
        "{fresh_stats:?}"
    );
    let on_new_master = resp_command(new_master, &["EXISTS", &format!("keelson|{key}")])?;
    assert_eq!(
        on_new_master,
        RespValue::Integer(1),
        "the value is on {new_master}"
    );
    assert!(writer.stats().redis_connected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_password_and_database_are_used() -> anyhow::Result<()> {
    let group = tokio::task::block_in_place(|| SentinelGroup::start(MASTER, 1, 3))?;
    // Sentinels learn the password first, so that they never see the master as down.
    for sentinel in group.sentinel_addrs() {
        let addr = sentinel.parse()?;
        let reply = resp_command(addr, &["SENTINEL", "SET", MASTER, "auth-pass", "s3cret"])?;
        assert_eq!(reply, RespValue::Simple("OK".to_string()));
    }
    for node in group.nodes() {
        node.command(&["CONFIG", "SET", "masterauth", "s3cret"])?;
        node.command(&["CONFIG", "SET", "requirepass", "s3cret"])?;
    }
    let master = group.master_addr()?;
    let mut writer_config = config_with_password(&group, 0, Some("s3cret"));
    if let Some(RedisConfig::Sentinel { db, .. }) = &mut writer_config.redis {
        *db = 3;
    }
    let writer = ManifestCache::new(writer_config.clone(), &Registry::new()).await?;
    let reader = ManifestCache::new(writer_config, &Registry::new()).await?;
    writer.put("k", Bytes::from_static(b"v")).await;
    assert_eq!(reader.get("k").await, Some(Bytes::from_static(b"v")));
    for (db, expected) in [(3, 1), (0, 0)] {
        let client = redis::Client::open(format!("redis://:s3cret@{master}/{db}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let exists: i64 = redis::cmd("EXISTS")
            .arg("keelson|k")
            .query_async(&mut conn)
            .await?;
        assert_eq!(exists, expected, "keelson|k in db {db} of {master}");
    }

    let no_password = ManifestCache::new(config(&group, 0), &Registry::new()).await?;
    assert_eq!(no_password.get("k").await, None);
    assert!(no_password.stats().redis_errors >= 1);
    Ok(())
}
