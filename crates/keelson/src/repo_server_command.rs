//! `keelson repo-server`: the gRPC repo-server process, plus the shared construction of
//! a repo-server service that `keelson admin render` runs in process.

use anyhow::Context;
use clap::Args;
use keelson_cache::{CacheConfig, ManifestCache, RedisConfig};
use keelson_proto::repo_server::repo_server_server::RepoServerServer;
use keelson_repo_server::git::{GitConfig, GitStore};
use keelson_repo_server::metrics::{GitRequestType, RepoMetrics};
use keelson_repo_server::render::{KustomizeTool, Limits, PluginConfig, Tools};
use keelson_repo_server::service::{RepoService, ServiceConfig};
use keelson_telemetry::{Readiness, Registry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Flags shared by everything that renders manifests.
#[derive(Debug, Args, Clone)]
pub struct RenderArgs {
    /// Directory for bare Git mirrors.
    #[arg(long, env = "KEELSON_REPO_MIRROR_DIR")]
    pub mirror_dir: Option<PathBuf>,
    /// Path of the helm binary.
    #[arg(long, env = "KEELSON_HELM_PATH", default_value = "helm")]
    pub helm_path: PathBuf,
    /// Path of the kubectl binary (for `kubectl kustomize`).
    #[arg(long, env = "KEELSON_KUBECTL_PATH", default_value = "kubectl")]
    pub kubectl_path: PathBuf,
    /// Path of a standalone kustomize binary (used instead of `kubectl kustomize`).
    #[arg(long, env = "KEELSON_KUSTOMIZE_PATH")]
    pub kustomize_path: Option<PathBuf>,
    /// YAML file listing config-management plugins: `[{name, init: [..], generate: [..], discoverFileGlob}]`.
    #[arg(long, env = "KEELSON_PLUGIN_CONFIG")]
    pub plugin_config: Option<PathBuf>,
    /// Time limit of one render.
    #[arg(long, env = "ARGOCD_EXEC_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration)]
    pub exec_timeout: Duration,
    /// Largest rendered output accepted, in bytes.
    #[arg(long, env = "KEELSON_MAX_MANIFEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_manifest_bytes: usize,
    /// Largest input file accepted, in bytes.
    #[arg(long, env = "KEELSON_MAX_FILE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_file_bytes: usize,
    /// Kube version given to Helm when a request names none.
    #[arg(long, env = "KEELSON_DEFAULT_KUBE_VERSION", default_value = "1.35.0")]
    pub default_kube_version: String,
    /// Concurrent renders; 0 for unlimited.
    #[arg(
        long,
        env = "ARGOCD_REPO_SERVER_PARALLELISM_LIMIT",
        default_value_t = 0
    )]
    pub parallelism_limit: usize,
    /// How long resolved branch and tag names are cached.
    #[arg(long, env = "KEELSON_REVISION_CACHE_TTL", default_value = "3m", value_parser = humantime::parse_duration)]
    pub revision_cache_ttl: Duration,
}

/// Flags of `keelson repo-server`.
#[derive(Debug, Args)]
pub struct RepoServerArgs {
    /// gRPC listen address; port 0 picks a free port.
    #[arg(
        long,
        env = "KEELSON_REPO_SERVER_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    listen: SocketAddr,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "KEELSON_REPO_SERVER_METRICS_LISTEN",
        default_value = "127.0.0.1:8084"
    )]
    metrics_listen: SocketAddr,
    /// In-process manifest cache size, in MiB.
    #[arg(long, env = "KEELSON_REPO_CACHE_L1_MIB", default_value_t = 256)]
    l1_cache_mib: usize,
    /// How long cached manifests live in Redis.
    #[arg(long, env = "ARGOCD_REPO_CACHE_EXPIRATION", default_value = "24h", value_parser = humantime::parse_duration)]
    repo_cache_expiration: Duration,
    /// Redis address (`host:port` or `redis://…`), for the shared cache.
    #[arg(long, env = "REDIS_SERVER", conflicts_with = "redis_sentinel")]
    redis: Option<String>,
    /// Redis Sentinels (`host:port,…`).
    #[arg(long, env = "REDIS_SENTINEL", value_delimiter = ',')]
    redis_sentinel: Vec<String>,
    /// The Sentinel master name.
    #[arg(long, env = "REDIS_MASTER", default_value = "argocd")]
    redis_master: String,
    /// Redis password.
    #[arg(long, env = "REDIS_PASSWORD")]
    redis_password: Option<String>,
    #[command(flatten)]
    render: RenderArgs,
}

/// Builds a repo-server service from flags; returns it with its scratch directory guard.
pub async fn build_service(
    render: &RenderArgs,
    cache: CacheConfig,
    registry: &Registry,
) -> anyhow::Result<(RepoService, tempfile::TempDir)> {
    let work = tempfile::Builder::new()
        .prefix("keelson-repo-")
        .tempdir()
        .context("creating the work directory")?;
    let mirror_dir = render
        .mirror_dir
        .clone()
        .unwrap_or_else(|| work.path().join("mirrors"));
    let scratch_dir = work.path().join("scratch");
    std::fs::create_dir_all(&scratch_dir).context("creating the scratch directory")?;
    let metrics = RepoMetrics::new(registry)?;
    let observer_metrics = metrics.clone();
    let git = GitStore::new(GitConfig {
        root: mirror_dir,
        revision_cache_ttl: render.revision_cache_ttl,
        ..GitConfig::default()
    })?
    .with_observer(Arc::new(
        move |kind, repo: &str, took: Duration, _failed: bool| {
            let kind = match kind {
                keelson_repo_server::git::GitRequestKind::LsRemote => GitRequestType::LsRemote,
                keelson_repo_server::git::GitRequestKind::Fetch => GitRequestType::Fetch,
            };
            observer_metrics.git_request(kind, repo, took.as_secs_f64());
        },
    ));
    let cache = ManifestCache::new(cache, registry).await?;
    let tools = Tools {
        helm: render.helm_path.clone(),
        kustomize: match &render.kustomize_path {
            Some(p) => KustomizeTool::Kustomize(p.clone()),
            None => KustomizeTool::Kubectl(render.kubectl_path.clone()),
        },
        plugins: load_plugins(render.plugin_config.as_deref())?,
    };
    let config = ServiceConfig {
        scratch_dir,
        parallelism_limit: render.parallelism_limit,
        tools,
        limits: Limits {
            timeout: render.exec_timeout,
            max_output_bytes: render.max_manifest_bytes,
            max_file_bytes: render.max_file_bytes,
        },
        default_kube_version: render.default_kube_version.clone(),
    };
    Ok((RepoService::new(git, cache, config, metrics), work))
}

fn load_plugins(path: Option<&std::path::Path>) -> anyhow::Result<HashMap<String, PluginConfig>> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let list: Vec<PluginFileEntry> =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(list
        .into_iter()
        .map(|p| {
            let config = PluginConfig {
                name: p.name.clone(),
                init: p.init,
                generate: p.generate,
                discover_file_glob: p.discover_file_glob,
            };
            (p.name, config)
        })
        .collect())
}

/// One entry of the `--plugin-config` file.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PluginFileEntry {
    name: String,
    #[serde(default)]
    init: Option<Vec<String>>,
    generate: Vec<String>,
    #[serde(default)]
    discover_file_glob: Option<String>,
}

/// Runs the repo-server until Ctrl-C or SIGTERM.
pub async fn run(args: RepoServerArgs) -> anyhow::Result<()> {
    let registry = Registry::new();
    let redis = if !args.redis_sentinel.is_empty() {
        Some(RedisConfig::Sentinel {
            sentinels: args.redis_sentinel.clone(),
            master_name: args.redis_master.clone(),
            password: args.redis_password.clone(),
            sentinel_password: None,
            db: 0,
        })
    } else {
        args.redis.as_ref().map(|r| RedisConfig::Direct {
            url: if r.contains("://") {
                r.clone()
            } else {
                format!("redis://{r}")
            },
        })
    };
    let cache = CacheConfig {
        l1_max_bytes: args.l1_cache_mib * 1024 * 1024,
        ttl: args.repo_cache_expiration,
        redis,
        ..CacheConfig::default()
    };
    let (service, _work) = build_service(&args.render, cache, &registry).await?;
    let readiness = Readiness::default();
    let telemetry =
        keelson_telemetry::serve(args.metrics_listen, registry, readiness.clone()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let grpc_addr = listener.local_addr()?;
    let server = RepoServerServer::new(service)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024);
    readiness.set(true);
    println!(
        "{}",
        serde_json::json!({"grpc": grpc_addr.to_string(), "metrics": telemetry.addr.to_string()})
    );
    tracing::info!(grpc = %grpc_addr, metrics = %telemetry.addr, "repo-server ready");
    tonic::transport::Server::builder()
        .add_service(server)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            crate::signals::shutdown(),
        )
        .await
        .context("serving gRPC")?;
    Ok(())
}
