//! `keelson controller`: the application controller process — flags (with Argo CD's
//! environment variable names where Argo CD has them), the repo-server pool or an
//! in-process repo-server, /metrics, and shutdown on Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use keelson_cache::CacheConfig;
use keelson_controller::{Controller, ControllerConfig, ControllerSettings};
use keelson_repo_server::pool::{Endpoints, PoolConfig, RepoClient};
use keelson_telemetry::{Readiness, Registry};

use crate::fleet_args::FleetArgs;
use crate::repo_server_command::{RenderArgs, build_service};

/// Flags of `keelson controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Namespace of Applications, AppProjects, cluster and repository Secrets.
    #[arg(long, env = "ARGOCD_NAMESPACE", default_value = "argocd")]
    pub namespace: String,
    /// Kubeconfig of the management cluster (default: in-cluster or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Repo-server addresses (`host:port,…`).
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_REPO_SERVER",
        value_delimiter = ',',
        default_value = "127.0.0.1:8081"
    )]
    pub repo_server: Vec<String>,
    /// Render manifests in this process instead of calling repo-servers.
    #[arg(long, env = "KEELSON_REPO_SERVER_IN_PROCESS")]
    pub repo_server_in_process: bool,
    /// Refresh workers.
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_STATUS_PROCESSORS",
        default_value_t = 20
    )]
    pub status_processors: usize,
    /// Operation workers.
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_OPERATION_PROCESSORS",
        default_value_t = 10
    )]
    pub operation_processors: usize,
    /// Resync period of every app.
    #[arg(long, env = "ARGOCD_RECONCILIATION_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub app_resync: Duration,
    /// Largest random jitter added to each app's resync.
    #[arg(long, env = "ARGOCD_RECONCILIATION_JITTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub app_resync_jitter: Duration,
    /// Resync period that bypasses the manifest cache (0: off).
    #[arg(long, env = "ARGOCD_HARD_RECONCILIATION_TIMEOUT", default_value = "0s", value_parser = humantime::parse_duration)]
    pub app_hard_resync: Duration,
    /// Concurrent writes of one sync step.
    #[arg(
        long,
        env = "ARGOCD_APPLICATION_CONTROLLER_KUBECTL_PARALLELISM_LIMIT",
        default_value_t = 20
    )]
    pub kubectl_parallelism_limit: usize,
    /// Time budget of one repo-server call.
    #[arg(long, env = "ARGOCD_APPLICATION_CONTROLLER_REPO_SERVER_TIMEOUT_SECONDS", default_value = "60s", value_parser = humantime::parse_duration)]
    pub repo_server_timeout: Duration,
    /// Address of /metrics, /healthz, /readyz and `POST /api/v1/refresh[?repo=URL]` (a
    /// normal refresh of every app held, or of one repository's apps, without writes).
    #[arg(
        long,
        env = "KEELSON_CONTROLLER_METRICS_LISTEN",
        default_value = "127.0.0.1:8082"
    )]
    pub metrics_listen: SocketAddr,
    /// Append every write to destination clusters to this file (the fleet tests' safety
    /// checker reads it).
    #[arg(long, env = "KEELSON_APPLY_LOG")]
    pub apply_log: Option<PathBuf>,
    /// Fleet settings.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Render settings for the in-process repo-server.
    #[command(flatten)]
    pub render: RenderArgs,
}

impl ControllerArgs {
    fn settings(&self) -> ControllerSettings {
        ControllerSettings {
            namespace: self.namespace.clone(),
            status_processors: self.status_processors.max(1),
            operation_processors: self.operation_processors.max(1),
            app_resync: self.app_resync,
            app_resync_jitter: self.app_resync_jitter,
            app_hard_resync: (!self.app_hard_resync.is_zero()).then_some(self.app_hard_resync),
            kubectl_parallelism_limit: self.kubectl_parallelism_limit.max(1),
            repo_timeout: self.repo_server_timeout,
            replica_id: self.fleet.replica_id(),
            apply_log: self.apply_log.clone(),
            ..ControllerSettings::default()
        }
    }
}

/// A kube client for the management cluster from a kubeconfig path or the environment.
pub async fn management_client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .context("loading kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("finding a kubeconfig")?,
    };
    kube::Client::try_from(config).context("building the management cluster client")
}

/// Runs the controller until Ctrl-C or SIGTERM.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let registry = Registry::new();
    let client = management_client(args.kubeconfig.as_ref()).await?;
    let (repo, _work) = if args.repo_server_in_process {
        let (service, work) =
            build_service(&args.render, CacheConfig::default(), &registry).await?;
        (RepoClient::in_process(service), Some(work))
    } else {
        let pool = RepoClient::connect(PoolConfig {
            endpoints: Endpoints::Static(args.repo_server.clone()),
            request_timeout: args.repo_server_timeout,
            ..PoolConfig::default()
        })
        .await
        .context("connecting to the repo-servers")?;
        (pool, None)
    };
    let readiness = Readiness::default();
    // `POST /api/v1/refresh` and `GET /api/v1/units` beside /metrics; they answer once
    // the controller started.
    let refresh_slot = keelson_controller::RefreshSlot::default();
    let telemetry = keelson_telemetry::serve_with(
        args.metrics_listen,
        registry.clone(),
        readiness.clone(),
        keelson_controller::refresh_router(refresh_slot.clone())
            .merge(keelson_controller::units_router(refresh_slot.clone())),
    )
    .await?;
    let (ownership, fence) = args.fleet.fence();
    let mut controller = Controller::start(ControllerConfig {
        settings: args.settings(),
        client: client.clone(),
        repo,
        registry: registry.clone(),
        fence,
    })
    .await
    .context("starting the controller")?;
    // Set once, just after start: it cannot have been set before.
    let _ = refresh_slot.set(controller.refresh_handle());
    let fleet = match ownership {
        Some(ownership) => Some(
            crate::fleet_args::start(&args.fleet, ownership, &mut controller, client, &registry)
                .await?,
        ),
        None => None,
    };
    readiness.set(true);
    println!(
        "{}",
        serde_json::json!({"metrics": telemetry.addr.to_string()})
    );
    crate::signals::shutdown().await;
    if let Some(fleet) = fleet {
        fleet.stop().await;
    }
    controller.shutdown().await;
    Ok(())
}
