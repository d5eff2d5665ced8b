//! The scenarios of `keelson_bench run`: what each measures, the shared run
//! configuration, and dispatch by name. Each scenario module starts its own
//! installation on loopback, bounds every wait by [`Config::timeout`] and returns one
//! [`BenchResult`] with its targets (given at the reference size: 50,000 apps, 500
//! clusters, 3 controllers, 2 repo-servers).

pub mod balance;
pub mod failover;
pub mod install;
pub mod latency;
pub mod memory;
pub mod prom_text;
pub mod scale;
pub mod steady;

use std::time::Duration;

use crate::results::BenchResult;

/// The scenarios, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Apps created → all Synced + Healthy.
    Scale,
    /// Full refresh with nothing changed.
    Steady,
    /// Commit → Synced latency.
    Latency,
    /// kill -9 of one replica.
    Failover,
    /// Apps per replica, uniform and Zipf-skewed.
    Balance,
    /// Controller RSS and bytes per cached object.
    Memory,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Scenario; 6] = [
        Scenario::Scale,
        Scenario::Steady,
        Scenario::Latency,
        Scenario::Failover,
        Scenario::Balance,
        Scenario::Memory,
    ];

    /// The scenario's name (also the result file's prefix).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Scale => "scale",
            Scenario::Steady => "steady",
            Scenario::Latency => "latency",
            Scenario::Failover => "failover",
            Scenario::Balance => "balance",
            Scenario::Memory => "memory",
        }
    }

    /// The scenario named `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What to run: the installation's size and the scenarios' knobs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Applications.
    pub apps: usize,
    /// Destination clusters.
    pub clusters: usize,
    /// Controller processes.
    pub controllers: usize,
    /// Repo-server processes.
    pub repo_servers: usize,
    /// Bound of every wait.
    pub timeout: Duration,
    /// `latency`: commits made.
    pub commits: usize,
    /// `latency`: commits per second.
    pub commit_rate: f64,
    /// `balance`: Zipf exponent of the skewed run.
    pub zipf_s: f64,
    /// `--max-apps-per-unit` of the controllers (none: whole clusters are units).
    pub max_apps_per_unit: Option<u64>,
    /// `--lease-duration` of fleets.
    pub lease: Duration,
    /// `failover`: commit a change to every moved app at the kill.
    pub commit_at_kill: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            apps: 1_000,
            clusters: 10,
            controllers: 1,
            repo_servers: 1,
            timeout: Duration::from_secs(900),
            commits: 30,
            commit_rate: 2.0,
            zipf_s: 1.0,
            max_apps_per_unit: None,
            lease: Duration::from_secs(10),
            commit_at_kill: false,
        }
    }
}

impl Config {
    /// `<apps>x<clusters>x<controllers>x<repo-servers>`, the size part of file names.
    pub fn size(&self) -> String {
        format!(
            "{}x{}x{}x{}",
            self.apps, self.clusters, self.controllers, self.repo_servers
        )
    }

    /// An empty result of `scenario` at this size, with the size as metrics.
    pub fn result(&self, scenario: Scenario) -> BenchResult {
        let mut r = BenchResult {
            scenario: scenario.name().to_owned(),
            size: self.size(),
            ..BenchResult::default()
        };
        r.metric("apps", self.apps as u64);
        r.metric("clusters", self.clusters as u64);
        r.metric("controllers", self.controllers as u64);
        r.metric("repo_servers", self.repo_servers as u64);
        r
    }
}

/// Sets a target (units in the name; `_max` targets produce pass flags).
pub fn target(result: &mut BenchResult, name: &str, value: impl Into<serde_json::Value>) {
    result.targets.insert(name.to_owned(), value.into());
}

/// Runs one scenario.
pub async fn run(scenario: Scenario, config: &Config) -> anyhow::Result<BenchResult> {
    match scenario {
        Scenario::Scale => scale::run(config).await,
        Scenario::Steady => steady::run(config).await,
        Scenario::Latency => latency::run(config).await,
        Scenario::Failover => failover::run(config).await,
        Scenario::Balance => balance::run(config).await,
        Scenario::Memory => memory::run(config).await,
    }
}
