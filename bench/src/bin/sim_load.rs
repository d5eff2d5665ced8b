//! `sim-load`: the simulator's footprint and watch throughput. Starts `keelson sim` with
//! C clusters, creates O ConfigMaps (2 KB each) per cluster, reads the process's RSS and
//! CPU time, then measures watch events per second delivered to one watcher per
//! cluster while all clusters are updated as fast as the clients go, for a bounded time.

use anyhow::Context;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use keelson_bench::proc_stats::{cpu_time, rss_bytes};
use keelson_bench::results::BenchResult;
use keelson_testbed::{Sim, SimOptions};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// Simulated clusters.
    #[arg(long, env = "BENCH_CLUSTERS", default_value_t = 500)]
    clusters: usize,
    /// ConfigMaps per cluster.
    #[arg(long, env = "BENCH_OBJECTS", default_value_t = 200)]
    objects: usize,
    /// Seconds of the watch-throughput phase.
    #[arg(long, env = "BENCH_WATCH_SECONDS", default_value_t = 20)]
    watch_seconds: u64,
    /// Watchers per cluster in the watch phase (events delivered = writes × watchers).
    #[arg(long, env = "BENCH_WATCHERS_PER_CLUSTER", default_value_t = 4)]
    watchers_per_cluster: usize,
    /// Concurrent requests.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Where result JSON goes.
    #[arg(long, env = "BENCH_RESULTS", default_value = "bench/results")]
    results: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    keelson_testbed::install_crypto_provider();
    let opts = SimOptions {
        clusters: args.clusters,
        ..SimOptions::default()
    };
    let mut sim = tokio::task::spawn_blocking(move || Sim::start(opts)).await??;
    let pid = sim.process().pid();
    let apis: Vec<Api<ConfigMap>> = (0..sim.clusters().len())
        .map(|i| sim.client(i).map(|cl| Api::namespaced(cl, "default")))
        .collect::<Result<_, _>>()?;
    let (rss_idle, _) = rss_bytes(pid).context("reading rss")?;
    let cpu_start = cpu_time(pid).context("reading cpu")?;
    let payload = "x".repeat(2_000);
    let started = Instant::now();
    // Round-robin over clusters so each client has about one request in flight (and
    // one pooled connection) at a time.
    let jobs = (0..args.objects).flat_map(|i| apis.iter().map(move |api| (api.clone(), i)));
    futures::stream::iter(jobs)
        .map(|(api, i)| {
            let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}"), "labels": {"app": format!("app-{}", i % 20)}}, "data": {"payload": payload}})).unwrap_or_default();
            async move { api.create(&PostParams::default(), &cm).await.map_err(|e| anyhow::anyhow!("create failed: {e:?}")) }
        })
        .buffer_unordered(args.concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let load_s = started.elapsed().as_secs_f64();
    let objects = args.clusters * args.objects;
    let (rss, _) = rss_bytes(pid).context("reading rss")?;
    let cpu_load = cpu_time(pid).context("reading cpu")? - cpu_start;

    // Watch throughput: one watcher per cluster, writers updating objects round-robin.
    let received = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.watch_seconds);
    let mut watchers = Vec::new();
    for api in apis
        .iter()
        .flat_map(|a| std::iter::repeat_n(a, args.watchers_per_cluster))
    {
        let api = api.clone();
        let received = Arc::clone(&received);
        watchers.push(tokio::spawn(async move {
            let rv = api
                .list_metadata(&Default::default())
                .await
                .ok()?
                .metadata
                .resource_version?;
            let stream = api
                .watch(&WatchParams::default().timeout(600), &rv)
                .await
                .ok()?;
            let mut stream = Box::pin(stream);
            while let Some(Ok(ev)) = stream.next().await {
                if matches!(ev, WatchEvent::Modified(_)) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watch_start = Instant::now();
    let cpu_watch_start = cpu_time(pid).context("reading cpu")?;
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..args.concurrency {
        let apis = apis.clone();
        let writes = Arc::clone(&writes);
        let n = args.objects;
        writers.push(tokio::spawn(async move {
            let mut k = w;
            while Instant::now() < deadline {
                let api = &apis[k % apis.len()];
                let name = format!("cm-{}", (k / apis.len()) % n);
                let patch = json!({"data": {"n": k.to_string()}});
                if api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .is_ok()
                {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                k += 64;
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watch_s = watch_start.elapsed().as_secs_f64();
    let cpu_watch = cpu_time(pid).context("reading cpu")? - cpu_watch_start;
    for w in watchers {
        w.abort();
    }
    let (rss_after, peak) = rss_bytes(pid).context("reading rss")?;

    let mut result = BenchResult {
        scenario: "sim-load".into(),
        size: format!("{}x{}", args.clusters, args.objects),
        ..BenchResult::default()
    };
    result.metric("clusters", args.clusters);
    result.metric("watchers", args.clusters * args.watchers_per_cluster);
    result.metric("objects", objects);
    result.metric("rss_idle_mib", rss_idle as f64 / 1_048_576.0);
    result.metric("rss_loaded_mib", rss as f64 / 1_048_576.0);
    result.metric("rss_peak_mib", peak as f64 / 1_048_576.0);
    result.metric("rss_after_watch_mib", rss_after as f64 / 1_048_576.0);
    result.metric(
        "bytes_per_object",
        (rss.saturating_sub(rss_idle)) as f64 / objects as f64,
    );
    result.metric("create_s", load_s);
    result.metric("creates_per_s", objects as f64 / load_s);
    result.metric("cpu_load_s", cpu_load.as_secs_f64());
    result.metric(
        "writes_per_s",
        writes.load(Ordering::Relaxed) as f64 / watch_s,
    );
    result.metric(
        "watch_events_per_s",
        received.load(Ordering::Relaxed) as f64 / watch_s,
    );
    result.metric("cpu_watch_phase_s", cpu_watch.as_secs_f64());
    result.metric("watch_phase_s", watch_s);
    let path = result.write(&args.results)?;
    println!("{}", serde_json::to_string_pretty(&result.to_json())?);
    eprintln!("wrote {}", path.display());
    Ok(())
}
