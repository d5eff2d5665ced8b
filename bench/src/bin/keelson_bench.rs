//! `keelson_bench`: runs the benchmark scenarios of ARCHITECTURE §10 against a whole
//! installation on loopback (`run SCENARIO`), writing one JSON per run under
//! `--results`, and compares two result files (`compare A.json B.json`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keelson_bench::scenarios::{self, Config, Scenario};
use keelson_bench::size_args::SizeArgs;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(about = "Keelson load benchmarks (see bench/README.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one scenario (scale, steady, latency, failover, balance, memory) or `all`.
    Run(RunArgs),
    /// Prints every metric two result files share: both values and the ratio B/A.
    Compare {
        /// The baseline result.
        a: PathBuf,
        /// The result compared with it.
        b: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scenario name, or `all`.
    #[arg(env = "BENCH_SCENARIO")]
    scenario: String,
    #[command(flatten)]
    size: SizeArgs,
    /// `latency`: commits to make.
    #[arg(long, env = "BENCH_COMMITS", default_value_t = 30)]
    commits: usize,
    /// `latency`: commits per second.
    #[arg(long, env = "BENCH_COMMIT_RATE", default_value_t = 2.0)]
    commit_rate: f64,
    /// `balance`: Zipf exponent of the skewed run.
    #[arg(long, env = "BENCH_ZIPF_S", default_value_t = 1.0)]
    zipf_s: f64,
    /// Controllers' `--max-apps-per-unit` (default: whole clusters are units).
    #[arg(long, env = "BENCH_MAX_APPS_PER_UNIT")]
    max_apps_per_unit: Option<u64>,
    /// Fleet lease duration, in seconds.
    #[arg(long, env = "BENCH_LEASE_SECONDS", default_value_t = 10)]
    lease: u64,
    /// `failover`: commit a change to every app of the killed replica at the kill, so
    /// that the survivors render a new commit (result `failover-commit`).
    #[arg(long, env = "BENCH_COMMIT_AT_KILL")]
    commit_at_kill: bool,
}

impl RunArgs {
    fn config(&self) -> Config {
        Config {
            apps: self.size.apps,
            clusters: self.size.clusters,
            controllers: self.size.controllers,
            repo_servers: self.size.repo_servers,
            timeout: Duration::from_secs(self.size.timeout),
            commits: self.commits,
            commit_rate: self.commit_rate,
            zipf_s: self.zipf_s,
            max_apps_per_unit: self.max_apps_per_unit,
            lease: Duration::from_secs(self.lease),
            commit_at_kill: self.commit_at_kill,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(&args).await,
        Command::Compare { a, b } => compare(&a, &b),
    }
}

async fn run(args: &RunArgs) -> anyhow::Result<()> {
    keelson_testbed::install_crypto_provider();
    let list: Vec<Scenario> = if args.scenario == "all" {
        Scenario::ALL.to_vec()
    } else {
        vec![Scenario::parse(&args.scenario).with_context(|| {
            format!(
                "unknown scenario {:?} (scale, steady, latency, failover, balance, memory, all)",
                args.scenario
            )
        })?]
    };
    if std::env::var_os("KEELSON_CONTROLLER_TEST_LOG").is_none() {
        eprintln!("hint: KEELSON_CONTROLLER_TEST_LOG=warn makes the controllers log less");
    }
    let config = args.config();
    let mut failed = Vec::new();
    for scenario in list {
        eprintln!("running {} at {}", scenario.name(), config.size());
        let result = scenarios::run(scenario, &config)
            .await
            .with_context(|| format!("scenario {}", scenario.name()))?;
        let json = result.to_json();
        println!("{}", table(&json));
        let path = result.write(&args.size.results)?;
        eprintln!("wrote {}", path.display());
        let passed = json["pass"]
            .as_object()
            .is_none_or(|p| p.values().all(|v| v == true));
        if !passed {
            failed.push(scenario.name());
        }
    }
    if !failed.is_empty() {
        eprintln!("targets missed in: {}", failed.join(", "));
    }
    Ok(())
}

/// A text table of a result: metric, value, target and pass flag.
fn table(json: &Value) -> String {
    let mut out = format!(
        "{} {}\n{:<44} {:>14} {:>10} {:>5}\n",
        json["scenario"].as_str().unwrap_or(""),
        json["size"].as_str().unwrap_or(""),
        "metric",
        "value",
        "target",
        "pass"
    );
    let empty = serde_json::Map::new();
    let metrics = json["metrics"].as_object().unwrap_or(&empty);
    let targets = json["targets"].as_object().unwrap_or(&empty);
    let pass = json["pass"].as_object().unwrap_or(&empty);
    for (name, value) in metrics {
        let target = targets
            .iter()
            .find(|(t, _)| t.strip_suffix("_max") == Some(name.as_str()))
            .map(|(_, v)| format!("<= {v}"))
            .unwrap_or_default();
        let ok = pass
            .get(name)
            .map_or("", |v| if v == true { "yes" } else { "NO" });
        out.push_str(&format!(
            "{name:<44} {:>14} {target:>10} {ok:>5}\n",
            number(value)
        ));
    }
    out
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Some(f) => format!("{f:.3}"),
        None => v.to_string(),
    }
}

fn read(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn compare(a: &Path, b: &Path) -> anyhow::Result<()> {
    let (ja, jb) = (read(a)?, read(b)?);
    let empty = serde_json::Map::new();
    let ma = ja["metrics"].as_object().unwrap_or(&empty);
    let mb = jb["metrics"].as_object().unwrap_or(&empty);
    println!(
        "A: {} {}  B: {} {}",
        ja["scenario"].as_str().unwrap_or(""),
        ja["size"].as_str().unwrap_or(""),
        jb["scenario"].as_str().unwrap_or(""),
        jb["size"].as_str().unwrap_or("")
    );
    println!("{:<44} {:>14} {:>14} {:>9}", "metric", "A", "B", "B/A");
    for (name, va) in ma {
        let Some(vb) = mb.get(name) else { continue };
        let ratio = match (va.as_f64(), vb.as_f64()) {
            (Some(x), Some(y)) if x != 0.0 => format!("{:.3}", y / x),
            _ => "-".to_owned(),
        };
        println!(
            "{name:<44} {:>14} {:>14} {ratio:>9}",
            number(va),
            number(vb)
        );
    }
    Ok(())
}
