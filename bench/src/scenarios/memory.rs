//! `memory`: controller resident memory after the scale phase and bytes per cached live
//! object: the growth of the controllers' RSS from before the apps existed, divided by
//! the objects their cluster caches hold (`argocd_cluster_api_resource_objects`).

use std::time::Duration;

use super::install::{Options, install, mib};
use super::{Config, Scenario, prom_text, target};
use crate::proc_stats::rss_bytes;
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let inst = install(config, &Options::of(config)).await?;
    let mut result = config.result(Scenario::Memory);
    let pids: Vec<u32> = inst.env.controllers.iter().map(|c| c.pid()).collect();
    let rss0: Vec<u64> = pids
        .iter()
        .map(|p| rss_bytes(*p).unwrap_or_default().0)
        .collect();
    let synced = inst.scale_phase_complete(config).await?;
    result.metric("synced_all_s", synced.synced_s);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = inst.controller_samples().await?;
    let (mut rss_max, mut peak_max, mut growth, mut objects) = (0u64, 0u64, 0u64, 0.0);
    for (i, pid) in pids.iter().enumerate() {
        let (rss, peak) = rss_bytes(*pid).unwrap_or_default();
        let cached = samples.get(i).map_or(0.0, |s| {
            prom_text::sum(s, "argocd_cluster_api_resource_objects", |_| true)
        });
        result.metric(&format!("controller_{i}_rss_mib"), mib(rss));
        result.metric(&format!("controller_{i}_cached_objects"), cached);
        rss_max = rss_max.max(rss);
        peak_max = peak_max.max(peak);
        growth += rss.saturating_sub(rss0.get(i).copied().unwrap_or(0));
        objects += cached;
    }
    result.metric("controller_rss_mib", mib(rss_max));
    result.metric("controller_peak_rss_mib", mib(peak_max));
    result.metric("controller_rss_growth_mib", mib(growth));
    result.metric("cached_objects", objects);
    let per_object = if objects > 0.0 {
        growth as f64 / objects
    } else {
        0.0
    };
    result.metric("bytes_per_cached_object", per_object);
    target(&mut result, "controller_rss_mib_max", 2048);
    Ok(result)
}
