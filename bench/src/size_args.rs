//! The size flags every benchmark binary takes: how many apps, clusters, controller and
//! repo-server processes, the bound of every wait, and where result files go.

use std::path::PathBuf;

/// Size of the installation a benchmark starts.
#[derive(Debug, Clone, clap::Args)]
pub struct SizeArgs {
    /// Applications.
    #[arg(long, env = "BENCH_APPS", default_value_t = 1_000)]
    pub apps: usize,
    /// Destination clusters.
    #[arg(long, env = "BENCH_CLUSTERS", default_value_t = 10)]
    pub clusters: usize,
    /// Controller processes (more than one runs a fleet with Kubernetes Leases;
    /// failover uses at least 2).
    #[arg(long, env = "BENCH_CONTROLLERS", default_value_t = 1)]
    pub controllers: usize,
    /// Repo-server processes.
    #[arg(long, env = "BENCH_REPO_SERVERS", default_value_t = 1)]
    pub repo_servers: usize,
    /// Bound of every wait, in seconds.
    #[arg(long, env = "BENCH_TIMEOUT_SECONDS", default_value_t = 900)]
    pub timeout: u64,
    /// Where result JSON goes.
    #[arg(long, env = "BENCH_RESULTS", default_value = "bench/results")]
    pub results: PathBuf,
}
