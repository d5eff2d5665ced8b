//! `keelson sim`: runs the simulator, writes kubeconfigs, prints one JSON line with the
//! endpoints when ready, and serves until interrupted.

use anyhow::Context;
use clap::Args;
use keelson_sim::kubeconfig::{self, ClusterEndpoint};
use keelson_sim::{SimConfig, SimHandle, WorkloadConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `keelson sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KEELSON_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Number of simulated clusters (named c1 … cN).
    #[arg(long, env = "KEELSON_SIM_CLUSTERS", default_value_t = 3)]
    clusters: usize,
    /// Serve HTTPS with a generated CA (written to DIR/ca.crt); the default.
    #[arg(long, env = "KEELSON_SIM_TLS", conflicts_with = "plain_http")]
    tls: bool,
    /// Serve plain HTTP instead of HTTPS (kubectl then refuses to send tokens; kube-rs
    /// clients still work).
    #[arg(long, env = "KEELSON_SIM_PLAIN_HTTP")]
    plain_http: bool,
    /// Directory for kubeconfig files (one per cluster plus a combined one).
    #[arg(
        long,
        env = "KEELSON_SIM_KUBECONFIG_DIR",
        default_value = ".keelson-sim"
    )]
    kubeconfig_dir: PathBuf,
    /// Kubelet-like behaviour: workloads become available, jobs complete, PVCs bind.
    #[arg(long, env = "KEELSON_SIM_WORKLOAD")]
    workload: bool,
    /// Delay before workloads report ready, in milliseconds.
    #[arg(long, env = "KEELSON_SIM_WORKLOAD_DELAY_MS", default_value_t = 1_000)]
    workload_delay_ms: u64,
    /// Also create ReplicaSets and Pods for Deployments (and Pods for Jobs).
    #[arg(long, env = "KEELSON_SIM_WORKLOAD_PODS")]
    workload_pods: bool,
    /// Watch events kept per cluster for resumption; older resourceVersions get 410 Gone.
    #[arg(long, env = "KEELSON_SIM_WATCH_HISTORY", default_value_t = 2_000)]
    watch_history: usize,
    /// Seconds of watch events kept beyond `--watch-history` (as the real API server's
    /// watch cache keeps 75 s); 0 keeps exactly `--watch-history` events.
    #[arg(long, env = "KEELSON_SIM_WATCH_WINDOW_SECS", default_value_t = 75)]
    watch_window_secs: u64,
    /// Interval between watch bookmarks, in milliseconds.
    #[arg(
        long,
        env = "KEELSON_SIM_BOOKMARK_INTERVAL_MS",
        default_value_t = 10_000
    )]
    bookmark_interval_ms: u64,
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let mut config = SimConfig {
        listen: args.listen,
        clusters: args.clusters,
        tls: args.tls || !args.plain_http,
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms),
        ..SimConfig::default()
    };
    config.limits.watch_history = args.watch_history;
    config.limits.watch_window = Duration::from_secs(args.watch_window_secs);
    if args.workload {
        config.workload = Some(WorkloadConfig {
            ready_delay: Duration::from_millis(args.workload_delay_ms),
            pods: args.workload_pods,
            ..WorkloadConfig::default()
        });
    }
    let sim = SimHandle::start(config).await?;
    let info = write_files(&sim, &args.kubeconfig_dir)?;
    println!("{info}");
    eprintln!(
        "keelson sim: {} clusters on {}; try: kubectl --kubeconfig {} get namespaces",
        args.clusters,
        sim.addr,
        args.kubeconfig_dir.join("c1.kubeconfig").display()
    );
    crate::signals::shutdown().await;
    Ok(())
}

fn write_files(sim: &SimHandle, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let ca = sim.ca_pem.as_deref();
    let ca_file = match ca {
        Some(pem) => {
            let path = dir.join("ca.crt");
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    let endpoints = sim.endpoints();
    let combined = dir.join("kubeconfig");
    std::fs::write(&combined, kubeconfig::kubeconfig(&endpoints, ca, None))
        .with_context(|| format!("writing {}", combined.display()))?;
    let mut clusters = Vec::new();
    for ep in &endpoints {
        let path = dir.join(format!("{}.kubeconfig", ep.name));
        let one = [ClusterEndpoint {
            name: ep.name.clone(),
            server: ep.server.clone(),
            token: ep.token.clone(),
        }];
        std::fs::write(&path, kubeconfig::kubeconfig(&one, ca, None))
            .with_context(|| format!("writing {}", path.display()))?;
        clusters.push(
            json!({"name": ep.name, "server": ep.server, "token": ep.token, "kubeconfig": path}),
        );
    }
    Ok(json!({
        "listen": sim.addr.to_string(),
        "ca_file": ca_file,
        "kubeconfig": combined,
        "admin_token": sim.admin_token,
        "clusters": clusters,
    }))
}
