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
            "60s",
            "--app-resync-jitter",
            "10s",
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
    let mut last_print = Instant::now();
    let mut done = 0;
    let mut summary = String::new();
    while started.elapsed() < WAIT {
        let list = env.apps().list(&Default::default()).await.unwrap();
        let values: Vec<serde_json::Value> = list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        done = values.iter().filter(|a| synced_healthy(a)).count();
        if done == APPS {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(15) {
            let mut counts = std::collections::BTreeMap::new();
            for a in &values {
                *counts
                    .entry(format!("{}/{}", sync_status(a), health(a)))
                    .or_insert(0usize) += 1;
            }
            summary = format!("{counts:?}");
            eprintln!(
                "scale: {:.0}s: {done}/{APPS} Synced+Healthy {summary}",
                started.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
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
}
