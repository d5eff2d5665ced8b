//! Scale run of `keelson controller`: one thousand automated apps (one small ConfigMap
//! each) on ten simulated clusters must all reach Synced + Healthy within a bounded wait.
//! Prints the time taken, the controller's CPU seconds and its peak RSS; no timing asserts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use std::time::{Duration, Instant};

use anyhow::Context;
use controller_support::*;
use futures::StreamExt;
use serde_json::json;

const APPS: usize = 1000;
const CLUSTERS: usize = 10;
const WAIT: Duration = Duration::from_secs(600);
/// Resync period of the controller in this run.
const RESYNC_SECS: u64 = 30;
/// How long the steady state is measured.
const IDLE: Duration = Duration::from_secs(30);

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit(')').next().context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `/proc/PID/status` field in kB (VmHWM, VmRSS).
fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_apps_on_ten_clusters_reach_synced_and_healthy() {
    let mut env = Env::start(EnvOptions {
        sim_clusters: CLUSTERS,
        repo_servers: 2,
        controller_args: [
            "--app-resync",
            "30s",
            "--app-resync-jitter",
            "5s",
            "--log",
            "info",
        ]
        .map(String::from)
        .to_vec(),
        label: "scale",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    let fx = Fixture::new().unwrap();
    let files: Vec<(String, String)> = (0..APPS)
        .map(|i| {
            (
                format!("apps/app-{i:04}/cm.yaml"),
                cm_yaml(&format!("cm-{i:04}"), &format!("value-{i}"), &[]),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    fx.commit(&refs, &[], "a thousand apps").unwrap();
    for c in 0..CLUSTERS {
        env.namespace(Dest::Sim(c), "scale").await.unwrap();
    }
    let pid = env.controller.pid();
    let cpu_before = cpu_seconds(pid).unwrap();
    let url = fx.url();
    let started = Instant::now();
    let created = futures::stream::iter(0..APPS)
        .map(|i| {
            let app = app_manifest(
                &format!("scale-{i:04}"),
                &url,
                &format!("apps/app-{i:04}"),
                &env.server(Dest::Sim(i % CLUSTERS)),
                "scale",
                json!({"automated": {"prune": true, "selfHeal": true}}),
            );
            env.create_app(app)
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = created
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    assert!(failed.is_empty(), "creating apps failed: {failed:?}");
    eprintln!(
        "scale: {APPS} apps created in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (done, summary) = wait_all(&env, started, synced_healthy).await;
    let took = started.elapsed();
    let cpu = cpu_seconds(pid).unwrap() - cpu_before;
    let hwm = status_kb(pid, "VmHWM").unwrap();
    let rss = status_kb(pid, "VmRSS").unwrap();
    let repo_cpu: f64 = env
        .repos
        .iter_mut()
        .map(|r| cpu_seconds(r.process().pid()).unwrap_or(0.0))
        .sum();
    eprintln!(
        "scale: {done}/{APPS} apps on {CLUSTERS} clusters Synced+Healthy after {:.1}s; controller CPU {:.1}s, peak RSS {:.1} MiB (now {:.1} MiB); repo-servers CPU {:.1}s",
        took.as_secs_f64(),
        cpu,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0,
        repo_cpu
    );
    assert_eq!(
        done,
        APPS,
        "not every app Synced+Healthy after {WAIT:?}: {summary}\n{}",
        env.controller_log(30)
    );
    // Steady state: one resync period of a thousand unchanged apps.
    let cpu_idle_start = cpu_seconds(pid).unwrap();
    tokio::time::sleep(IDLE).await;
    let idle_cpu = cpu_seconds(pid).unwrap() - cpu_idle_start;
    eprintln!(
        "scale: steady state: controller CPU {:.1}s over {}s ({:.0}% of one core), RSS {:.1} MiB",
        idle_cpu,
        IDLE.as_secs(),
        idle_cpu * 100.0 / IDLE.as_secs_f64(),
        status_kb(pid, "VmRSS").unwrap() as f64 / 1024.0
    );
    // One commit changing every app: all follow within the bounded wait.
    let files: Vec<(String, String)> = (0..APPS)
        .map(|i| {
            (
                format!("apps/app-{i:04}/cm.yaml"),
                cm_yaml(&format!("cm-{i:04}"), &format!("changed-{i}"), &[]),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    let sha = fx.commit(&refs, &[], "change every app").unwrap();
    let cpu_change_start = cpu_seconds(pid).unwrap();
    let changed = Instant::now();
    let (done, summary) = wait_all(&env, changed, |a| {
        synced_healthy(a) && sync_revision(a) == sha
    })
    .await;
    eprintln!(
        "scale: a commit changing all {APPS} apps was synced everywhere after {:.1}s (resync period {}s); controller CPU {:.1}s; peak RSS {:.1} MiB",
        changed.elapsed().as_secs_f64(),
        RESYNC_SECS,
        cpu_seconds(pid).unwrap() - cpu_change_start,
        status_kb(pid, "VmHWM").unwrap() as f64 / 1024.0
    );
    assert_eq!(done, APPS, "not every app followed the commit: {summary}");
    let cm = env
        .config_map(Dest::Sim(7), "scale", "cm-0007")
        .await
        .unwrap();
    assert_eq!(cm.unwrap()["data"]["key"], "changed-7");
}

/// Polls the Applications until all satisfy `pred` or `WAIT` passes since `since`;
/// returns how many did and a count by sync/health status.
async fn wait_all(
    env: &Env,
    since: Instant,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> (usize, String) {
    let mut last_print = Instant::now();
    let mut done = 0;
    let mut summary = String::new();
    while since.elapsed() < WAIT {
        let list = env.apps().list(&Default::default()).await.unwrap();
        let values: Vec<serde_json::Value> = list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        done = values.iter().filter(|a| pred(a)).count();
        let mut counts = std::collections::BTreeMap::new();
        for a in &values {
            *counts
                .entry(format!("{}/{}", sync_status(a), health(a)))
                .or_insert(0usize) += 1;
        }
        summary = format!("{counts:?}");
        if done == APPS {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "scale: {:.0}s: {done}/{APPS} done {summary}",
                since.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    (done, summary)
}
