//! `balance`: apps per replica of an N-controller fleet over Kubernetes Leases, once with
//! apps spread uniformly over the clusters and once Zipf-skewed (cluster of rank k gets
//! a share ∝ 1/(k+1)^s). Each run creates the apps, waits until the fleet's
//! `keelson_shard_apps{replica}` (every replica exports the whole fleet's picture)
//! accounts for every app over N replicas and holds still, and reports max/mean.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::install::{Installation, Options, install};
use super::{Config, Scenario, prom_text, target};
use crate::fleet_env::Distribution;
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let mut result = config.result(Scenario::Balance);
    result.metric("max_apps_per_unit", config.max_apps_per_unit.unwrap_or(0));
    result.metric("zipf_s", config.zipf_s);
    let runs = [
        ("uniform", Distribution::Uniform),
        ("zipf", Distribution::Zipf { s: config.zipf_s }),
    ];
    for (label, distribution) in runs {
        let options = Options {
            force_fleet: true,
            distribution,
            ..Options::of(config)
        };
        let inst = install(config, &options).await?;
        let started = Instant::now();
        inst.env.create_apps(config.apps, 32).await?;
        let per = wait_assigned(&inst, config).await?;
        result.metric(
            &format!("{label}_assigned_s"),
            started.elapsed().as_secs_f64(),
        );
        let loads: Vec<u64> = inst
            .replicas
            .iter()
            .map(|r| per.get(r).copied().unwrap_or(0))
            .collect();
        let mut by_cluster = vec![0u64; config.clusters.max(1)];
        for i in 0..config.apps {
            by_cluster[inst.env.cluster_of(i)] += 1;
        }
        result.metric(&format!("{label}_max_over_mean"), max_over_mean(&loads));
        result.metric(
            &format!("{label}_replica_apps_max"),
            loads.iter().copied().max().unwrap_or(0),
        );
        result.metric(
            &format!("{label}_replica_apps_min"),
            loads.iter().copied().min().unwrap_or(0),
        );
        result.metric(&format!("{label}_assigned_apps"), loads.iter().sum::<u64>());
        result.metric(
            &format!("{label}_largest_cluster_apps"),
            by_cluster.iter().copied().max().unwrap_or(0),
        );
    }
    target(&mut result, "uniform_max_over_mean_max", 1.15);
    target(&mut result, "zipf_max_over_mean_max", 1.15);
    Ok(result)
}

/// Polls `keelson_shard_apps` of the first controller until it counts every app over
/// every replica and is unchanged across two polls, or the timeout passes.
async fn wait_assigned(
    inst: &Installation,
    config: &Config,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let started = Instant::now();
    let mut last: Option<BTreeMap<String, u64>> = None;
    loop {
        let samples = prom_text::parse(&inst.env.controller_metrics(0).await?);
        let per: BTreeMap<String, u64> =
            prom_text::by_label(&samples, "keelson_shard_apps", "replica")
                .into_iter()
                .map(|(r, v)| (r, v.max(0.0) as u64))
                .collect();
        let complete = per.values().sum::<u64>() >= config.apps as u64
            && inst.replicas.iter().all(|r| per.contains_key(r));
        if (complete && last.as_ref() == Some(&per)) || started.elapsed() > config.timeout {
            return Ok(per);
        }
        last = complete.then_some(per);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Max over mean of per-replica loads (1 when nothing is loaded).
pub fn max_over_mean(loads: &[u64]) -> f64 {
    let total: u64 = loads.iter().sum();
    let max = loads.iter().copied().max().unwrap_or(0);
    if total == 0 {
        return 1.0;
    }
    max as f64 * loads.len() as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::max_over_mean;

    #[test]
    fn ratio_of_max_to_mean() {
        assert_eq!(max_over_mean(&[10, 10]), 1.0);
        assert_eq!(max_over_mean(&[30, 10]), 1.5);
        assert_eq!(max_over_mean(&[0, 0]), 1.0);
    }
}
