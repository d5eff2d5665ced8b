//! Behaviour of the work queue against real tokio time: dedup, dirty re-queue, one worker per
//! key, delays, rate limiting, shutdown and the `workqueue_*` metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use keelson_workqueue::{QueueMetrics, RateLimiter, WorkQueue};
use prometheus::Registry;
use tokio::time::{Instant, timeout};

const STEP: Duration = Duration::from_secs(5);

fn queue<K: Clone + Eq + std::hash::Hash + Send + Sync + 'static>() -> WorkQueue<K> {
    WorkQueue::new("test", RateLimiter::default(), None)
}

async fn next<K: Clone + Eq + std::hash::Hash + Send + Sync + 'static>(
    q: &WorkQueue<K>,
) -> anyhow::Result<K> {
    timeout(STEP, q.get())
        .await
        .context("get timed out")?
        .context("queue shut down")
}

#[tokio::test]
async fn adding_a_queued_key_again_is_ignored() -> anyhow::Result<()> {
    let q = queue();
    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(q.len(), 2);
    assert_eq!(next(&q).await?, "a");
    assert_eq!(next(&q).await?, "b");
    assert!(q.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_key_added_while_processing_is_requeued_on_done() -> anyhow::Result<()> {
    let q = queue();
    q.add("a");
    q.add("b");
    let a = next(&q).await?;
    q.add("a");
    q.add("a");
    // Still processing: not queued again yet, and b keeps its place.
    assert_eq!(q.len(), 1);
    assert_eq!(next(&q).await?, "b");
    q.done(&a);
    assert_eq!(q.len(), 1);
    assert_eq!(next(&q).await?, "a");
    q.done(&"a");
    q.done(&"b");
    assert!(q.is_empty());
    // done without a get changes nothing.
    q.done(&"zzz");
    assert!(q.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_workers_never_hold_one_key_at_once() -> anyhow::Result<()> {
    let q: WorkQueue<u32> = queue();
    let in_flight = Arc::new(parking_lot::Mutex::new(HashSet::new()));
    let processed = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(parking_lot::Mutex::new(HashSet::new()));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (q, in_flight, processed, overlaps, seen) = (
            q.clone(),
            Arc::clone(&in_flight),
            Arc::clone(&processed),
            Arc::clone(&overlaps),
            Arc::clone(&seen),
        );
        workers.push(tokio::spawn(async move {
            while let Some(key) = q.get().await {
                if !in_flight.lock().insert(key) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_micros(200)).await;
                in_flight.lock().remove(&key);
                processed.fetch_add(1, Ordering::SeqCst);
                seen.lock().insert(key);
                q.done(&key);
            }
        }));
    }
    for round in 0..400u32 {
        for key in 0..5u32 {
            q.add(key);
        }
        if round % 8 == 0 {
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
    }
    // Let the last adds be picked up, then drain.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !q.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    q.shut_down();
    for w in workers {
        timeout(Duration::from_secs(20), w)
            .await
            .context("worker hung")??;
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    let n = processed.load(Ordering::SeqCst);
    // Deduplication means far fewer than 2000 runs, but every key ran at least once.
    assert!((5..2000).contains(&n), "processed {n}");
    assert!(in_flight.lock().is_empty());
    assert_eq!(seen.lock().len(), 5);
    Ok(())
}

#[tokio::test]
async fn delayed_keys_come_out_in_ready_order() -> anyhow::Result<()> {
    let q = queue();
    let start = Instant::now();
    q.add_after("c", Duration::from_millis(90));
    q.add_after("a", Duration::from_millis(30));
    q.add_after("b", Duration::from_millis(60));
    assert!(q.is_empty());
    for (key, at_least) in [("a", 30), ("b", 60), ("c", 90)] {
        let got = next(&q).await?;
        assert_eq!(got, key);
        assert!(start.elapsed() >= Duration::from_millis(at_least));
        q.done(&got);
    }
    Ok(())
}

#[tokio::test]
async fn the_earlier_delay_for_a_key_wins() -> anyhow::Result<()> {
    let q = queue();
    let start = Instant::now();
    // A getter already sleeping on the first (long) delay must wake for the shorter one.
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    q.add_after("x", Duration::from_secs(30));
    q.add_after("x", Duration::from_millis(20));
    q.add_after("x", Duration::from_secs(60));
    let got = timeout(STEP, getter).await??;
    assert_eq!(got, Some("x"));
    assert!(start.elapsed() < Duration::from_secs(5));
    q.done(&"x");
    // The superseded entries never surface again.
    assert!(timeout(Duration::from_millis(100), q.get()).await.is_err());
    // A zero delay adds at once.
    q.add_after("y", Duration::ZERO);
    assert_eq!(q.len(), 1);
    Ok(())
}

#[tokio::test]
async fn rate_limited_adds_back_off_and_forget_resets() -> anyhow::Result<()> {
    let limiter = RateLimiter::exponential(Duration::from_millis(10), Duration::from_millis(80));
    let q = WorkQueue::new("rl", limiter, None);
    for (round, expected_ms) in [10u64, 20, 40, 80, 80].into_iter().enumerate() {
        let start = Instant::now();
        q.add_rate_limited("k");
        let expected_requeues = u32::try_from(round)? + 1;
        assert_eq!(q.num_requeues(&"k"), expected_requeues);
        let got = next(&q).await?;
        let waited = start.elapsed();
        if waited < Duration::from_millis(expected_ms) {
            bail!("round {round}: waited {waited:?}, expected at least {expected_ms} ms");
        }
        q.done(&got);
    }
    q.forget(&"k");
    assert_eq!(q.num_requeues(&"k"), 0);
    let start = Instant::now();
    q.add_rate_limited("k");
    let _ = next(&q).await?;
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_eq!(q.num_requeues(&"k"), 1);
    // Other keys have their own count.
    assert_eq!(q.num_requeues(&"other"), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shut_down_wakes_waiting_getters_and_drains() -> anyhow::Result<()> {
    let q: WorkQueue<&str> = queue();
    let getters: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        })
        .collect();
    q.add_after("delayed", Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(30)).await;
    q.shut_down();
    for g in getters {
        assert_eq!(timeout(STEP, g).await??, None);
    }
    assert!(q.is_shutting_down());

    let q = queue();
    q.add("a");
    q.add("b");
    let a = next(&q).await?;
    q.add("a");
    q.shut_down();
    q.add("c");
    q.add_after("d", Duration::ZERO);
    q.add_rate_limited("e");
    assert_eq!(next(&q).await?, "b");
    // A key dirtied before shutdown is still processed once its worker is done.
    q.done(&a);
    assert_eq!(next(&q).await?, "a");
    assert_eq!(timeout(STEP, q.get()).await?, None);
    Ok(())
}

#[tokio::test]
async fn shut_down_with_drain_waits_for_workers() -> anyhow::Result<()> {
    let q = queue();
    q.add(1u8);
    let key = next(&q).await?;
    let drain = tokio::spawn({
        let q = q.clone();
        async move { q.shut_down_with_drain().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!drain.is_finished());
    q.done(&key);
    timeout(STEP, drain).await??;
    Ok(())
}

fn metric(registry: &Registry, family: &str, queue: &str) -> Option<f64> {
    let families = registry.gather();
    let f = families.iter().find(|f| f.name() == family)?;
    let m = f.get_metric().iter().find(|m| {
        m.get_label()
            .iter()
            .any(|l| l.name() == "name" && l.value() == queue)
    })?;
    if let Some(c) = m.counter.as_ref() {
        return Some(c.value());
    }
    if let Some(g) = m.gauge.as_ref() {
        return Some(g.value());
    }
    m.histogram.as_ref().map(|h| h.get_sample_count() as f64)
}

#[tokio::test]
async fn metrics_follow_a_known_sequence() -> anyhow::Result<()> {
    let registry = Registry::new();
    let metrics = QueueMetrics::register(&registry)?;
    let q = WorkQueue::new(
        "app_reconciliation_queue",
        RateLimiter::default(),
        Some(Arc::clone(&metrics)),
    );
    let other: WorkQueue<&str> = WorkQueue::new("other", RateLimiter::default(), Some(metrics));
    let m = |family: &str| metric(&registry, family, "app_reconciliation_queue");

    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(m("workqueue_adds_total"), Some(2.0));
    assert_eq!(m("workqueue_depth"), Some(2.0));
    let a = next(&q).await?;
    assert_eq!(m("workqueue_depth"), Some(1.0));
    assert_eq!(m("workqueue_queue_duration_seconds"), Some(1.0));
    // Re-added while processing: counts as an add and as depth until it is handed out again.
    q.add("a");
    assert_eq!(m("workqueue_adds_total"), Some(3.0));
    assert_eq!(m("workqueue_depth"), Some(2.0));
    tokio::time::sleep(Duration::from_millis(40)).await;
    let unfinished = m("workqueue_unfinished_work_seconds").context("unfinished")?;
    let longest = m("workqueue_longest_running_processor_seconds").context("longest")?;
    assert!((0.04..5.0).contains(&unfinished), "{unfinished}");
    assert!((0.04..5.0).contains(&longest), "{longest}");
    q.done(&a);
    assert_eq!(m("workqueue_work_duration_seconds"), Some(1.0));
    assert_eq!(m("workqueue_unfinished_work_seconds"), Some(0.0));
    assert_eq!(m("workqueue_longest_running_processor_seconds"), Some(0.0));

    q.add_after("c", Duration::ZERO);
    q.add_rate_limited("d");
    assert_eq!(m("workqueue_retries_total"), Some(2.0));
    assert_eq!(m("workqueue_adds_total"), Some(4.0));
    for _ in 0..4 {
        let k = next(&q).await?;
        q.done(&k);
    }
    assert_eq!(m("workqueue_adds_total"), Some(5.0));
    assert_eq!(m("workqueue_depth"), Some(0.0));
    assert_eq!(m("workqueue_queue_duration_seconds"), Some(5.0));
    assert_eq!(m("workqueue_work_duration_seconds"), Some(5.0));

    // The other queue has its own series.
    other.add("z");
    assert_eq!(
        metric(&registry, "workqueue_adds_total", "other"),
        Some(1.0)
    );
    // A dropped queue leaves the scrape-time gauges.
    drop(other);
    assert_eq!(
        metric(&registry, "workqueue_unfinished_work_seconds", "other"),
        None
    );
    Ok(())
}
