//! `scale`: time from creating every app (automated sync) to all Synced + Healthy, CPU
//! seconds and peak RSS of every process, and the requests the simulator served by verb.

use super::install::{Options, install};
use super::{Config, Scenario, target};
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let inst = install(config, &Options::of(config)).await?;
    let mut result = config.result(Scenario::Scale);
    let sim0 = inst.sim_requests().await?;
    let cpu0 = inst.cpu();
    let synced = inst.scale_phase(config).await?;
    result.metric("created_all_s", synced.created_s);
    result.metric("synced_all_s", synced.synced_s);
    result.metric("synced_healthy_apps", synced.done as u64);
    result.metric(
        "incomplete_apps",
        config.apps.saturating_sub(synced.done) as u64,
    );
    inst.record_cpu(&mut result, "", &cpu0);
    inst.record_peak_rss(&mut result);
    let sim1 = inst.sim_requests().await?;
    for (verb, n) in &sim1 {
        let before = sim0
            .get(verb)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let now = n.as_u64().unwrap_or(0);
        result.metric(&format!("sim_requests_{verb}"), now.saturating_sub(before));
    }
    result.metric("cluster_writes", inst.cluster_writes().await?);
    target(&mut result, "synced_all_s_max", 300);
    target(&mut result, "incomplete_apps_max", 0);
    Ok(result)
}
