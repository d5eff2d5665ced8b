//! `steady`: after the scale phase, a normal refresh of every app with nothing changed
//! (branches resolved afresh, every app compared with its cluster): `POST
//! /api/v1/refresh` on every controller, as a Git webhook for the repository would ask.
//! Done when no controller has a requested refresh left (`GET /api/v1/refresh`). Reports wall time, CPU seconds, reconciles,
//! and writes to destination clusters (the controllers' `argocd_app_k8s_request_total`
//! without Get and dry runs; must be 0). The refresh annotation on every app would add
//! 100,000 Application writes (set, then removed) and their watch events; measured once
//! at full size it took 280 s, of which the annotation writes alone took 90 s.

use std::time::{Duration, Instant};

use super::install::{Options, WRITE_VERBS, install, verb_count};
use super::{Config, Scenario, prom_text, target};
use crate::fleet_env::{post_refresh, refresh_pending};
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let inst = install(config, &Options::of(config)).await?;
    let mut result = config.result(Scenario::Steady);
    let synced = inst.scale_phase_complete(config).await?;
    result.metric("synced_all_s", synced.synced_s);
    // Let the last post-sync refreshes finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes0 = inst.cluster_writes().await?;
    let reconciles0 = reconciles(&inst).await?;
    let sim0 = inst.sim_requests().await?;
    let cpu0 = inst.cpu();
    let started = Instant::now();
    let mut queued = 0;
    for i in 0..inst.env.controllers.len() {
        queued += post_refresh(inst.env.controller_addr(i)?, None).await?;
    }
    result.metric("refresh_requested_s", started.elapsed().as_secs_f64());
    result.metric("refresh_queued_apps", queued);
    let pending = wait_refreshed(&inst, config.timeout).await?;
    result.metric("steady_refresh_s", started.elapsed().as_secs_f64());
    result.metric("refresh_pending_apps", pending as u64);
    inst.record_cpu(&mut result, "steady_", &cpu0);
    result.metric("reconciles", reconciles(&inst).await? - reconciles0);
    result.metric("cluster_writes", inst.cluster_writes().await? - writes0);
    let sim1 = inst.sim_requests().await?;
    let sim_writes: u64 = WRITE_VERBS
        .iter()
        .map(|v| verb_count(&sim1, v).saturating_sub(verb_count(&sim0, v)))
        .sum();
    // Includes the management cluster: the refresh annotations and status patches.
    result.metric("sim_write_requests_all_clusters", sim_writes);
    result.metric(
        "sim_get_requests",
        verb_count(&sim1, "get").saturating_sub(verb_count(&sim0, "get")),
    );
    target(&mut result, "steady_refresh_s_max", 15);
    target(&mut result, "cluster_writes_max", 0);
    target(&mut result, "refresh_pending_apps_max", 0);
    Ok(result)
}

/// Sum of `argocd_app_reconcile_count` over the controllers.
async fn reconciles(inst: &super::install::Installation) -> anyhow::Result<f64> {
    Ok(inst
        .controller_samples()
        .await?
        .iter()
        .map(|s| prom_text::sum(s, "argocd_app_reconcile_count", |_| true))
        .sum())
}

/// Polls the controllers (`GET /api/v1/refresh`, every 100 ms) until none has a
/// requested refresh left; returns how many are left at the timeout. A scrape of
/// `/metrics` would render every per-app series of 50,000 apps each time.
async fn wait_refreshed(
    inst: &super::install::Installation,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let mut pending = 0;
        for i in 0..inst.env.controllers.len() {
            pending += refresh_pending(inst.env.controller_addr(i)?).await?;
        }
        if pending == 0 || started.elapsed() >= timeout {
            return Ok(usize::try_from(pending).unwrap_or(usize::MAX));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
