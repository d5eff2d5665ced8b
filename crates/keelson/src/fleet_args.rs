//! Fleet flags of `keelson controller` and starting the shard manager that goes with
//! them: Kubernetes Leases (default), etcd, Argo CD's static StatefulSet mode, or none.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use keelson_controller::{AppFence, Controller, OwnAll, ShardFence};
use keelson_sharding::assignment::Algorithm;
use keelson_sharding::backend::{EtcdCoordination, KubernetesCoordination};
use keelson_sharding::manager::{ShardConfig, ShardManager, ordinal_from_hostname, run_static};
use keelson_sharding::metrics::ShardMetrics;
use keelson_sharding::ownership::Ownership;
use prometheus::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the fleet keeps member leases and claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Coordination {
    /// `coordination.k8s.io/v1` Leases in the controller's namespace.
    Kubernetes,
    /// etcd leases and keys.
    Etcd,
    /// No fleet: this controller works on every app.
    None,
}

/// Fleet flags.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// This replica's id (default: POD_NAME, else the hostname).
    #[arg(long, env = "KEELSON_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Coordination backend.
    #[arg(
        long,
        env = "KEELSON_COORDINATION",
        value_enum,
        default_value = "kubernetes"
    )]
    pub coordination: Coordination,
    /// etcd endpoints (`http://host:port,…`) for `--coordination etcd`.
    #[arg(long, env = "KEELSON_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, env = "KEELSON_ETCD_PREFIX", default_value = "/keelson")]
    pub etcd_prefix: String,
    /// Member lease duration (renewed every third of it).
    #[arg(long, env = "KEELSON_LEASE_DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// Assignment algorithm: consistent-hashing, round-robin or legacy (default: from
    /// argocd-cmd-params-cm `controller.sharding.algorithm`, else consistent-hashing).
    #[arg(long, env = "ARGOCD_CONTROLLER_SHARDING_ALGORITHM")]
    pub sharding_algorithm: Option<String>,
    /// Split clusters holding more apps than this into several units.
    #[arg(long, env = "KEELSON_MAX_APPS_PER_UNIT")]
    pub max_apps_per_unit: Option<u64>,
    /// Argo CD's static mode: this many replicas, the ordinal from the hostname suffix.
    #[arg(long, env = "ARGOCD_CONTROLLER_REPLICAS")]
    pub controller_replicas: Option<usize>,
}

impl FleetArgs {
    /// The replica id.
    pub fn replica_id(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "keelson-controller".to_owned())
    }

    /// Whether a fleet runs (and the controller must wait for claims).
    fn fleet(&self) -> bool {
        self.coordination != Coordination::None || self.controller_replicas.is_some()
    }

    /// The ownership view and the fence the controller is started with.
    pub fn fence(&self) -> (Option<Arc<Ownership>>, Arc<dyn AppFence>) {
        if !self.fleet() {
            return (None, Arc::new(OwnAll));
        }
        // Stop working a third of a lease before the lease could look expired to others.
        let ownership = Ownership::new(
            self.replica_id(),
            self.lease_duration,
            self.lease_duration / 3,
        );
        (Some(ownership.clone()), Arc::new(ShardFence(ownership)))
    }
}

/// A running shard manager.
pub struct FleetHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FleetHandle {
    /// Releases claims, resigns and waits for the manager to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Starts the shard manager for `controller`.
pub async fn start(
    args: &FleetArgs,
    ownership: Arc<Ownership>,
    controller: &mut Controller,
    client: kube::Client,
    registry: &Registry,
) -> anyhow::Result<FleetHandle> {
    let algorithm_name = args
        .sharding_algorithm
        .clone()
        .unwrap_or_else(|| controller.settings().sharding_algorithm.clone());
    let config = ShardConfig {
        lease: args.lease_duration,
        algorithm: Algorithm::parse(&algorithm_name)?,
        max_apps_per_unit: args.max_apps_per_unit,
        release_wait: Duration::from_secs(30),
    };
    let metrics = ShardMetrics::register(registry)?;
    let source = controller.cluster_source();
    controller.follow_ownership(ownership.clone());
    let (shutdown, rx) = watch::channel(false);
    let replica = args.replica_id();
    let namespace = controller.settings().namespace.clone();
    let task = if let Some(replicas) = args.controller_replicas {
        let ordinal = ordinal_from_hostname(&replica).with_context(|| {
            format!("static mode needs an ordinal suffix in the replica id {replica:?}")
        })?;
        tokio::spawn(run_static(ordinal, replicas, config, ownership, source, rx))
    } else {
        match args.coordination {
            Coordination::Kubernetes => {
                let coord =
                    KubernetesCoordination::new(client, &namespace, replica, args.lease_duration);
                let manager = ShardManager::new(coord, config, ownership, source, metrics);
                tokio::spawn(manager.run(rx))
            }
            Coordination::Etcd => {
                let coord = EtcdCoordination::connect(
                    &args.etcd_endpoints,
                    &args.etcd_prefix,
                    replica,
                    args.lease_duration,
                )
                .await
                .context("connecting to etcd")?;
                let manager = ShardManager::new(coord, config, ownership, source, metrics);
                tokio::spawn(manager.run(rx))
            }
            Coordination::None => anyhow::bail!("no coordination backend"),
        }
    };
    Ok(FleetHandle { shutdown, task })
}
