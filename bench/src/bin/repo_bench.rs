//! `repo-bench`: GenerateManifests throughput of one `keelson repo-server` process over
//! gRPC — warm (cache hits), cold plain YAML and cold Helm (renders, `no_cache`) — and
//! the cache hit rate after a commit that changes 1 of N app paths, with and without
//! `manifest-generate-paths`.

use clap::Parser;
use futures::StreamExt;
use keelson_bench::results::BenchResult;
use keelson_proto::repo_server::{ManifestRequest, Repository};
use keelson_repo_server::pool::{Endpoints, PoolConfig, RepoClient};
use keelson_testbed::{GitRepo, RepoServerProcess};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// Plain-YAML apps in the generated repository.
    #[arg(long, env = "BENCH_APPS", default_value_t = 1_000)]
    apps: usize,
    /// Requests per throughput phase.
    #[arg(long, env = "BENCH_REQUESTS", default_value_t = 2_000)]
    requests: usize,
    /// Helm renders in the cold Helm phase.
    #[arg(long, env = "BENCH_HELM_REQUESTS", default_value_t = 100)]
    helm_requests: usize,
    /// Requests in flight.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Where result JSON goes.
    #[arg(long, env = "BENCH_RESULTS", default_value = "bench/results")]
    results: std::path::PathBuf,
}

fn request(
    repo: &GitRepo,
    path: &str,
    app: &str,
    no_cache: bool,
    generate_paths: &str,
) -> ManifestRequest {
    ManifestRequest {
        repo: Some(Repository {
            url: repo.url(),
            ..Repository::default()
        }),
        revision: "main".into(),
        source_json: json!({"repoURL": repo.url(), "path": path, "targetRevision": "main"})
            .to_string(),
        app_name: app.into(),
        namespace: "default".into(),
        no_cache,
        manifest_generate_paths: generate_paths.into(),
        ..ManifestRequest::default()
    }
}

/// Runs requests with bounded concurrency; returns (requests/s, answers from cache).
async fn phase(
    pool: &RepoClient,
    reqs: Vec<ManifestRequest>,
    concurrency: usize,
) -> anyhow::Result<(f64, usize)> {
    let n = reqs.len();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(reqs)
        .map(|r| async move { pool.generate_manifests(r).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut cached = 0;
    for r in results {
        if r?.cached {
            cached += 1;
        }
    }
    Ok((n as f64 / secs, cached))
}

fn write_fixture(repo: &GitRepo, apps: usize) -> anyhow::Result<()> {
    for i in 0..apps {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  payload: \"{}\"\n",
            "x".repeat(1_500)
        );
        repo.write(&format!("apps/app-{i}/cm.yaml"), cm)?;
    }
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )?;
    repo.write("charts/web/values.yaml", "replicas: 2\nimage: nginx:1.25\n")?;
    repo.write(
        "charts/web/templates/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n    metadata:\n      labels: {app: {{ .Release.Name }}}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
    )?;
    repo.commit("fixture")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let repo = GitRepo::init()?;
    write_fixture(&repo, args.apps)?;
    let server = tokio::task::spawn_blocking(|| RepoServerProcess::start(&[])).await??;
    let pool = RepoClient::connect(PoolConfig {
        endpoints: Endpoints::Static(vec![server.grpc_addr().to_string()]),
        request_timeout: Duration::from_secs(60),
        ..PoolConfig::default()
    })
    .await?;
    let app = |i: usize| {
        (
            format!("apps/app-{}", i % args.apps),
            format!("app-{}", i % args.apps),
        )
    };
    let cold: Vec<_> = (0..args.requests)
        .map(|i| {
            let (p, a) = app(i);
            request(&repo, &p, &a, true, "")
        })
        .collect();
    let (cold_rps, _) = phase(&pool, cold, args.concurrency).await?;
    let warm: Vec<_> = (0..args.requests)
        .map(|i| {
            let (p, a) = app(i);
            request(&repo, &p, &a, false, ".")
        })
        .collect();
    phase(&pool, warm.clone(), args.concurrency).await?;
    let (warm_rps, warm_cached) = phase(&pool, warm, args.concurrency).await?;
    let helm: Vec<_> = (0..args.helm_requests)
        .map(|i| request(&repo, "charts/web", &format!("web-{i}"), true, ""))
        .collect();
    let (helm_rps, _) = phase(&pool, helm, args.concurrency.min(4)).await?;

    // A commit changing 1 of N apps: who is answered from the cache at the new commit?
    let all = |paths: &str| {
        (0..args.apps)
            .map(|i| {
                request(
                    &repo,
                    &format!("apps/app-{i}"),
                    &format!("app-{i}"),
                    false,
                    paths,
                )
            })
            .collect::<Vec<_>>()
    };
    phase(&pool, all(""), args.concurrency).await?;
    repo.write(
        "apps/app-0/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-0\ndata:\n  payload: changed\n",
    )?;
    repo.commit("change one app")?;
    // Let the revision cache expire so the new commit is seen (default TTL 3 min is too
    // long for a benchmark: ask for the SHA explicitly instead).
    let head = repo.head()?;
    let at_head = |mut reqs: Vec<ManifestRequest>| {
        for r in &mut reqs {
            r.revision = head.clone();
        }
        reqs
    };
    let (_, hits_with_paths) = phase(&pool, at_head(all(".")), args.concurrency).await?;
    repo.write(
        "apps/app-1/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-1\ndata:\n  payload: changed\n",
    )?;
    repo.commit("change another app")?;
    let head2 = repo.head()?;
    let mut without = all("");
    for r in &mut without {
        r.revision = head2.clone();
    }
    let (_, hits_without_paths) = phase(&pool, without, args.concurrency).await?;

    let mut result = BenchResult {
        scenario: "repo-server".into(),
        size: format!("{}apps", args.apps),
        ..BenchResult::default()
    };
    result.metric("generate_warm_per_s", warm_rps);
    result.metric(
        "warm_cached_share",
        warm_cached as f64 / args.requests as f64,
    );
    result.metric("generate_cold_yaml_per_s", cold_rps);
    result.metric("generate_cold_helm_per_s", helm_rps);
    result.metric(
        "hit_rate_one_path_changed_with_generate_paths",
        hits_with_paths as f64 / args.apps as f64,
    );
    result.metric(
        "hit_rate_one_path_changed_without_generate_paths",
        hits_without_paths as f64 / args.apps as f64,
    );
    let path = result.write(&args.results)?;
    println!("{}", serde_json::to_string_pretty(&result.to_json())?);
    eprintln!("wrote {}", path.display());
    Ok(())
}
