//! Repo-servers as real processes: three behind the client pool with one killed under
//! load (no request may fail), and the shared Redis cache surviving a Sentinel
//! failover under a stream of requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use keelson_proto::repo_server::{ManifestRequest, Repository};
use keelson_repo_server::pool::{Endpoints, PoolConfig, RepoClient};
use keelson_testbed::{GitRepo, RepoServerProcess, SentinelGroup};
use serde_json::json;
use std::time::{Duration, Instant};

/// A fixture repository with `apps` plain-YAML apps of one ConfigMap each.
fn fixture(apps: usize) -> GitRepo {
    let repo = GitRepo::init().unwrap();
    for i in 0..apps {
        repo.write(
            &format!("apps/app-{i}/cm.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  n: \"{i}\"\n"
            ),
        )
        .unwrap();
    }
    repo.commit("apps").unwrap();
    repo
}

fn request(repo: &GitRepo, app: usize, no_cache: bool) -> ManifestRequest {
    ManifestRequest {
        repo: Some(Repository { url: repo.url(), ..Repository::default() }),
        revision: "main".into(),
        source_json: json!({"repoURL": repo.url(), "path": format!("apps/app-{app}"), "targetRevision": "main"}).to_string(),
        app_name: format!("app-{app}"),
        namespace: "default".into(),
        no_cache,
        ..ManifestRequest::default()
    }
}

async fn start_servers(n: usize, args: Vec<String>) -> Vec<RepoServerProcess> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let args = args.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            RepoServerProcess::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }));
    }
    let mut servers = Vec::new();
    for h in handles {
        servers.push(
            h.await
                .unwrap()
                .expect("repo-server starts (cargo build -p keelson)"),
        );
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_survives_a_killed_repo_server() {
    let repo = fixture(20);
    let mut servers = start_servers(3, Vec::new()).await;
    let endpoints = servers.iter().map(|s| s.grpc_addr().to_string()).collect();
    let pool = RepoClient::connect(PoolConfig {
        endpoints: Endpoints::Static(endpoints),
        request_timeout: Duration::from_secs(20),
        ..PoolConfig::default()
    })
    .await
    .unwrap();
    // Warm up every server's mirror so the kill lands on rendering, not cloning.
    for i in 0..6 {
        pool.generate_manifests(request(&repo, i, true))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let total = 300usize;
    let mut done = 0usize;
    let mut failures = Vec::new();
    let mut stream = futures::stream::iter(0..total)
        .map(|i| {
            let pool = pool.clone();
            let req = request(&repo, i % 20, i % 3 == 0);
            async move { pool.generate_manifests(req).await }
        })
        .buffer_unordered(8);
    while let Some(result) = stream.next().await {
        done += 1;
        if done == total / 3 {
            servers[1].process().kill9().unwrap();
        }
        match result {
            Ok(resp) => assert_eq!(resp.manifests.len(), 1),
            Err(status) => failures.push(status.to_string()),
        }
        assert!(Instant::now() < deadline, "load did not finish in time");
    }
    assert_eq!(done, total);
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );

    // The survivors expose Argo CD's repo-server metrics.
    let metrics = keelson_testbed::http_get(servers[0].metrics_addr(), "/metrics").unwrap();
    for name in [
        "argocd_git_request_total",
        "argocd_git_request_duration_seconds",
        "argocd_repo_pending_request_total",
        "keelson_repo_manifest_requests_total",
    ] {
        assert!(metrics.body.contains(name), "/metrics lacks {name}");
    }
    assert!(
        metrics.body.contains("request_type=\"fetch\""),
        "git fetches are counted"
    );
    assert_eq!(
        keelson_testbed::http_get(servers[0].metrics_addr(), "/readyz")
            .unwrap()
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_a_missing_repo_revision_and_path() {
    let repo = fixture(1);
    let servers = start_servers(1, Vec::new()).await;
    let addr = servers[0].grpc_addr().to_string();
    let pool = RepoClient::connect(PoolConfig {
        endpoints: Endpoints::Static(vec![addr]),
        ..PoolConfig::default()
    })
    .await
    .unwrap();
    let mut missing_rev = request(&repo, 0, true);
    missing_rev.revision = "no-such-branch".into();
    let err = pool
        .generate_manifests(missing_rev)
        .await
        .expect_err("missing revision");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    assert!(err.message().contains("no-such-branch"), "{err}");
    let mut missing_repo = request(&repo, 0, true);
    missing_repo.repo = Some(Repository {
        url: "file:///nonexistent/repo".into(),
        ..Repository::default()
    });
    let err = pool
        .generate_manifests(missing_repo)
        .await
        .expect_err("missing repo");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    let mut missing_path = request(&repo, 0, true);
    missing_path.source_json =
        json!({"repoURL": repo.url(), "path": "nope", "targetRevision": "main"}).to_string();
    let err = pool
        .generate_manifests(missing_path)
        .await
        .expect_err("missing path");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cache_survives_sentinel_failover() {
    let repo = fixture(5);
    let group = tokio::task::spawn_blocking(|| SentinelGroup::start("keelson", 1, 3))
        .await
        .unwrap()
        .expect("sentinel group starts");
    let sentinels = group
        .sentinel_addrs()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let args = vec![
        "--redis-sentinel".to_owned(),
        sentinels,
        "--redis-master".to_owned(),
        "keelson".to_owned(),
    ];
    let servers = start_servers(2, args).await;
    let client = |s: &RepoServerProcess| {
        let addr = s.grpc_addr().to_string();
        async move {
            RepoClient::connect(PoolConfig {
                endpoints: Endpoints::Static(vec![addr]),
                request_timeout: Duration::from_secs(20),
                ..PoolConfig::default()
            })
            .await
            .unwrap()
        }
    };
    let (a, b) = (client(&servers[0]).await, client(&servers[1]).await);
    let mut group = group;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    for i in 0..200usize {
        if i == 50 {
            group.kill_master().unwrap();
            killed = true;
        }
        let resp = a.generate_manifests(request(&repo, i % 5, false)).await;
        assert!(resp.is_ok(), "request {i} failed during failover: {resp:?}");
        assert!(Instant::now() < deadline);
    }
    assert!(killed);
    let _group = tokio::task::spawn_blocking(move || {
        group.wait_for_failover(Duration::from_secs(30)).unwrap();
        group
    })
    .await
    .unwrap();
    // After the failover, what server A renders reaches server B through Redis.
    let recovered = Instant::now() + Duration::from_secs(30);
    let mut n = 0usize;
    loop {
        let mut req = request(&repo, 0, false);
        req.app_name = format!("after-failover-{n}");
        a.generate_manifests(req.clone()).await.unwrap();
        if b.generate_manifests(req).await.unwrap().cached {
            break;
        }
        n += 1;
        assert!(
            Instant::now() < recovered,
            "the shared cache did not recover after the failover"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
