//! `latency`: after the scale phase, commits at a fixed rate that each change one app's
//! ConfigMap, each followed by a refresh request on that app (the annotation, as Argo
//! CD's webhook handler sets it). Latency runs from the commit to that app being Synced
//! and Healthy at the commit (or a later one); p50, p99 and max.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::install::{Options, install};
use super::{Config, Scenario, target};
use crate::fleet_env::{FleetEnv, is_done};
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    // Default revision cache on the repo-servers: the refresh annotation makes the
    // controller ask for the branch as it is now (noRevisionCache), as after a webhook.
    let inst = Arc::new(install(config, &Options::of(config)).await?);
    let mut result = config.result(Scenario::Latency);
    let synced = inst.scale_phase_complete(config).await?;
    result.metric("synced_all_s", synced.synced_s);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let commits = config.commits.clamp(1, config.apps.max(1));
    let interval = Duration::from_secs_f64(1.0 / config.commit_rate.max(0.01));
    let shas: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut waits = Vec::new();
    let started = Instant::now();
    for k in 0..commits {
        let app = k * config.apps / commits;
        let sha = inst
            .env
            .commit_change(std::iter::once(app), &format!("latency-{k}"))?;
        let committed = Instant::now();
        shas.lock()
            .map_err(|_| anyhow::anyhow!("commit list poisoned"))?
            .push(sha);
        inst.env.request_refresh(std::iter::once(app), 1).await?;
        let (inst, shas, timeout) = (inst.clone(), shas.clone(), config.timeout);
        waits.push(tokio::spawn(async move {
            wait_synced(&inst.env, app, k, &shas, committed, timeout).await
        }));
        if let Some(rest) = (interval * (k as u32 + 1)).checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let mut latencies = Vec::new();
    for w in waits {
        if let Some(s) = w.await?? {
            latencies.push(s);
        }
    }
    latencies.sort_by(f64::total_cmp);
    result.metric("commits", commits as u64);
    result.metric("commit_rate_per_s", config.commit_rate);
    result.metric("missed_commits", (commits - latencies.len()) as u64);
    result.metric("latency_p50_s", percentile(&latencies, 0.50));
    result.metric("latency_p99_s", percentile(&latencies, 0.99));
    result.metric("latency_max_s", latencies.last().copied().unwrap_or(0.0));
    target(&mut result, "latency_p99_s_max", 3);
    target(&mut result, "missed_commits_max", 0);
    Ok(result)
}

/// Seconds from `committed` until app `i` is done at commit `k` or a later one; `None`
/// after `timeout`.
async fn wait_synced(
    env: &FleetEnv,
    i: usize,
    k: usize,
    shas: &Mutex<Vec<String>>,
    committed: Instant,
    timeout: Duration,
) -> anyhow::Result<Option<f64>> {
    while committed.elapsed() < timeout {
        let app = env.get_app(i).await?;
        let revision = app
            .status
            .as_ref()
            .and_then(|s| s.sync.as_ref())
            .and_then(|s| s.revision.clone())
            .unwrap_or_default();
        let at_or_after = shas
            .lock()
            .map_err(|_| anyhow::anyhow!("commit list poisoned"))?
            .iter()
            .position(|s| *s == revision)
            .is_some_and(|p| p >= k);
        if at_or_after && is_done(&app) {
            return Ok(Some(committed.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[2.0], 0.99), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
