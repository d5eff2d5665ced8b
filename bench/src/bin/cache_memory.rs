//! `cache-memory`: memory of the cluster cache. Starts `keelson sim` with C clusters,
//! creates N tracked 2 KB ConfigMaps per cluster, then starts C `ClusterCache`s in this
//! process, waits until all are synced and reports this process's RSS growth per cached
//! object and the time to sync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use keelson_bench::proc_stats::rss_bytes;
use keelson_bench::results::BenchResult;
use keelson_cluster_cache::{
    AppChange, CacheMetrics, ChangeSink, ClusterCache, ClusterCacheConfig,
};
use keelson_testbed::{Sim, SimOptions};
use kube::api::{Api, PostParams};
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// Simulated clusters.
    #[arg(long, env = "BENCH_CLUSTERS", default_value_t = 100)]
    clusters: usize,
    /// Tracked ConfigMaps per cluster.
    #[arg(long, env = "BENCH_OBJECTS", default_value_t = 1000)]
    objects: usize,
    /// Concurrent create requests.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Watch history of the simulator (kept small so the simulator stays lean).
    #[arg(long, env = "BENCH_WATCH_HISTORY", default_value_t = 100)]
    watch_history: usize,
    /// Seconds to wait for all caches to sync.
    #[arg(long, env = "BENCH_SYNC_TIMEOUT_SECONDS", default_value_t = 600)]
    sync_timeout_seconds: u64,
    /// Where result JSON goes.
    #[arg(long, env = "BENCH_RESULTS", default_value = "bench/results")]
    results: std::path::PathBuf,
}

struct Discard;

impl ChangeSink for Discard {
    fn on_change(&self, _change: AppChange) {}
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    keelson_testbed::install_crypto_provider();
    let opts = SimOptions {
        clusters: args.clusters,
        extra_args: vec!["--watch-history".into(), args.watch_history.to_string()],
        ..SimOptions::default()
    };
    let sim = tokio::task::spawn_blocking(move || Sim::start(opts)).await??;
    let clients: Vec<kube::Client> = (0..sim.clusters().len())
        .map(|i| sim.client(i))
        .collect::<Result<_, _>>()?;
    let payload = "x".repeat(2_000);
    let jobs = (0..args.objects).flat_map(|i| clients.iter().map(move |c| (c.clone(), i)));
    futures::stream::iter(jobs)
        .map(|(client, i)| {
            let cm: ConfigMap =
                serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}"),
                "labels": {"app.kubernetes.io/instance": format!("app-{}", i % 20)}},
                "data": {"payload": payload}}))
                .unwrap_or_default();
            async move {
                Api::<ConfigMap>::namespaced(client, "default")
                    .create(&PostParams::default(), &cm)
                    .await
                    .map_err(|e| anyhow::anyhow!("create failed: {e:?}"))
            }
        })
        .buffer_unordered(args.concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;

    let pid = std::process::id();
    let (rss_before, _) = rss_bytes(pid).context("reading rss")?;
    let registry = prometheus::Registry::new();
    let metrics = CacheMetrics::register(&registry)?;
    let sink: Arc<dyn ChangeSink> = Arc::new(Discard);
    let started = Instant::now();
    let mut caches = Vec::new();
    for (i, c) in sim.clusters().iter().enumerate() {
        let config = ClusterCacheConfig::new(c.name.as_str(), c.server.as_str());
        caches.push(ClusterCache::start(
            sim.client(i)?,
            config,
            metrics.clone(),
            sink.clone(),
        ));
    }
    let timeout = Duration::from_secs(args.sync_timeout_seconds);
    for cache in &caches {
        cache.wait_synced(timeout).await?;
    }
    let sync_s = started.elapsed().as_secs_f64();
    // Let transient list buffers be released before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, peak) = rss_bytes(pid).context("reading rss")?;
    let cached: usize = caches.iter().map(|c| c.status().objects).sum();
    let tracked: usize = (0..20)
        .map(|a| {
            caches
                .iter()
                .map(|c| c.app_objects(&format!("app-{a}")).len())
                .sum::<usize>()
        })
        .sum();
    anyhow::ensure!(
        tracked == args.clusters * args.objects,
        "tracked {tracked} objects"
    );
    let growth = rss_after.saturating_sub(rss_before);
    let per_object = growth as f64 / cached.max(1) as f64;
    println!(
        "clusters={} objects/cluster={} cached={} tracked={} sync={:.1}s rss_before={} rss_after={} peak={} bytes/object={:.0}",
        args.clusters,
        args.objects,
        cached,
        tracked,
        sync_s,
        rss_before,
        rss_after,
        peak,
        per_object
    );
    let mut result = BenchResult {
        scenario: "cluster-cache".into(),
        size: format!("{}x{}", args.clusters, args.objects),
        ..BenchResult::default()
    };
    result.metric("cached_objects", cached as u64);
    result.metric("tracked_objects", tracked as u64);
    result.metric("sync_seconds", sync_s);
    result.metric("rss_before_bytes", rss_before);
    result.metric("rss_after_bytes", rss_after);
    result.metric("rss_peak_bytes", peak);
    result.metric("bytes_per_cached_object", per_object.round());
    result
        .targets
        .insert("bytes_per_cached_object_max".into(), json!(4096));
    let path = result.write(&args.results)?;
    println!("wrote {}", path.display());
    drop(caches);
    Ok(())
}
