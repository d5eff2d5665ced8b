//! Smoke run of every `keelson_bench` scenario at a tiny size (20 apps, 2 clusters, 2
//! controllers, 1 repo-server): each must complete, reach its end state (every app done,
//! every commit landed, no writes on a no-op refresh, no double work) and write a result
//! file with every required key, finite non-negative metrics and a pass map. No timing
//! assertions.

use std::time::Duration;

use anyhow::Context;
use keelson_bench::scenarios::{self, Config, Scenario};
use serde_json::Value;

fn tiny() -> Config {
    Config {
        apps: 20,
        clusters: 2,
        controllers: 2,
        repo_servers: 1,
        timeout: Duration::from_secs(90),
        commits: 6,
        commit_rate: 2.0,
        ..Config::default()
    }
}

/// Runs `scenario`, writes its file, reads it back and checks its shape; returns it.
async fn run(scenario: Scenario, headline: &str) -> anyhow::Result<Value> {
    run_with(scenario, &tiny(), scenario.name(), headline).await
}

/// [`run`] with `config`, expecting the result to be named `name`.
async fn run_with(
    scenario: Scenario,
    config: &Config,
    name: &str,
    headline: &str,
) -> anyhow::Result<Value> {
    keelson_testbed::install_crypto_provider();
    let result = scenarios::run(scenario, config)
        .await
        .with_context(|| format!("scenario {}", scenario.name()))?;
    let dir = tempfile::tempdir()?;
    let path = result.write(dir.path())?;
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(format!("{name}-20x2x2x1.json").as_str())
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    eprintln!("{}", serde_json::to_string(&json)?);
    for key in [
        "scenario", "size", "machine", "version", "metrics", "targets", "pass",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
    assert_eq!(json["scenario"], name);
    let metrics = json["metrics"]
        .as_object()
        .context("metrics is no object")?;
    for (name, v) in metrics {
        let x = v
            .as_f64()
            .with_context(|| format!("metric {name} is not a number: {v}"))?;
        assert!(x.is_finite() && x >= 0.0, "metric {name} = {x}");
    }
    assert!(
        metrics.contains_key(headline),
        "{headline} missing in {json}"
    );
    let targets = json["targets"]
        .as_object()
        .context("targets is no object")?;
    let pass = json["pass"].as_object().context("pass is no object")?;
    assert!(!targets.is_empty());
    for name in targets.keys().filter_map(|t| t.strip_suffix("_max")) {
        assert!(
            pass.get(name).is_some_and(Value::is_boolean),
            "no pass flag for {name}"
        );
        assert!(metrics.contains_key(name), "target without metric: {name}");
    }
    Ok(json)
}

fn metric(json: &Value, name: &str) -> f64 {
    json["metrics"][name].as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Scale, "synced_all_s").await?;
    assert_eq!(metric(&json, "incomplete_apps"), 0.0);
    assert!(metric(&json, "sim_requests_create") > 0.0);
    assert!(metric(&json, "controller_0_peak_rss_mib") > 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Steady, "steady_refresh_s").await?;
    assert_eq!(metric(&json, "refresh_pending_apps"), 0.0);
    // Each controller's refresh endpoint queues the apps it holds: every app once.
    assert_eq!(metric(&json, "refresh_queued_apps"), 20.0);
    assert_eq!(
        metric(&json, "cluster_writes"),
        0.0,
        "a no-op refresh wrote to clusters"
    );
    assert!(metric(&json, "reconciles") >= 20.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Latency, "latency_p99_s").await?;
    assert_eq!(metric(&json, "missed_commits"), 0.0);
    assert!(metric(&json, "latency_p50_s") <= metric(&json, "latency_p99_s"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Failover, "failover_s").await?;
    assert!(metric(&json, "moved_apps") > 0.0);
    // Every moved unit was claimed by a survivor and each of its apps compared there.
    assert_eq!(metric(&json, "failover_unreconciled_units"), 0.0);
    assert_eq!(
        metric(&json, "failover_reconciled_apps"),
        metric(&json, "moved_apps")
    );
    assert!(metric(&json, "apply_log_writes") > 0.0);
    assert_eq!(metric(&json, "double_work_incidents"), 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_commit_smoke() -> anyhow::Result<()> {
    let config = Config {
        commit_at_kill: true,
        ..tiny()
    };
    let json = run_with(
        Scenario::Failover,
        &config,
        scenarios::failover::COMMIT_VARIANT,
        "failover_compared_s",
    )
    .await?;
    assert_eq!(metric(&json, "failover_unreconciled_units"), 0.0);
    assert_eq!(metric(&json, "failover_pending_apps"), 0.0);
    assert_eq!(metric(&json, "failover_uncompared_apps"), 0.0);
    assert_eq!(metric(&json, "double_work_incidents"), 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Balance, "uniform_max_over_mean").await?;
    assert_eq!(metric(&json, "uniform_assigned_apps"), 20.0);
    assert_eq!(metric(&json, "zipf_assigned_apps"), 20.0);
    assert!(metric(&json, "zipf_max_over_mean") >= 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_smoke() -> anyhow::Result<()> {
    let json = run(Scenario::Memory, "bytes_per_cached_object").await?;
    assert!(metric(&json, "cached_objects") > 0.0);
    assert!(metric(&json, "controller_rss_mib") > 0.0);
    Ok(())
}
