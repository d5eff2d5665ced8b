//! The installation every scenario starts from: the simulator, the Git repository, M
//! repo-servers and N controllers (a fleet over Kubernetes Leases or one unsharded
//! controller), then the scale phase — create every app and wait until all are Synced
//! and Healthy — and resource readings of every process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::Config;
use super::prom_text;
use crate::fleet_env::{Distribution, FleetEnv};
use crate::proc_stats::{cpu_time, rss_bytes};
use crate::results::BenchResult;

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct Options {
    /// A fleet over Kubernetes Leases even with one controller.
    pub force_fleet: bool,
    /// Controllers to start (at least 1).
    pub controllers: usize,
    /// Write one apply log per replica.
    pub apply_logs: bool,
    /// How apps are spread over clusters.
    pub distribution: Distribution,
    /// Resolve branch names on every request (`--revision-cache-ttl 0s` on the
    /// repo-servers) instead of reusing them for the default 3 minutes; scenarios that
    /// measure how fast a commit lands need it.
    pub fresh_revisions: bool,
}

impl Options {
    /// The plain setup of `config`: a fleet when more than one controller runs.
    pub fn of(config: &Config) -> Options {
        Options {
            force_fleet: false,
            controllers: config.controllers.max(1),
            apply_logs: false,
            distribution: Distribution::Uniform,
            fresh_revisions: false,
        }
    }
}

/// A started installation.
pub struct Installation {
    /// The environment.
    pub env: FleetEnv,
    /// Replica ids, one per controller.
    pub replicas: Vec<String>,
    /// Process labels (`controller_0`, `repo_server_0`, `sim`) and pids.
    pub pids: Vec<(String, u32)>,
    /// Apply log of each replica (when asked for).
    pub apply_logs: Vec<PathBuf>,
    /// Holds the apply logs.
    _log_dir: Option<tempfile::TempDir>,
}

/// What the scale phase reached.
#[derive(Debug, Clone, Copy)]
pub struct Synced {
    /// Seconds to create every Application.
    pub created_s: f64,
    /// Seconds from the first create to all done (or to the timeout).
    pub synced_s: f64,
    /// Apps Synced and Healthy at the end.
    pub done: usize,
}

/// Starts the simulator, writes the repository and starts the processes.
pub async fn install(config: &Config, options: &Options) -> anyhow::Result<Installation> {
    let mut env = FleetEnv::start(config.clusters.max(1)).await?;
    env.set_distribution(options.distribution);
    let apps = config.apps;
    env.write_apps(apps)
        .context("writing the apps to the repository")?;
    let repo_args: &[&str] = if options.fresh_revisions {
        &["--revision-cache-ttl", "0s"]
    } else {
        &[]
    };
    env.start_repo_servers_with(config.repo_servers.max(1), repo_args)?;
    let fleet = options.force_fleet || options.controllers > 1;
    let log_dir = if options.apply_logs {
        Some(
            tempfile::Builder::new()
                .prefix("keelson-bench-")
                .tempdir()?,
        )
    } else {
        None
    };
    let lease = format!("{}s", config.lease.as_secs().max(1));
    let max_per_unit = config.max_apps_per_unit.map(|m| m.to_string());
    let mut replicas = Vec::new();
    let mut apply_logs = Vec::new();
    for i in 0..options.controllers {
        let id = format!("controller-{i}");
        let mut args: Vec<String> = [
            "--replica-id",
            &id,
            "--coordination",
            if fleet { "kubernetes" } else { "none" },
            "--lease-duration",
            &lease,
            // Only the scenarios' own triggers refresh apps.
            "--app-resync",
            "3600s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(m) = &max_per_unit {
            args.extend(["--max-apps-per-unit".to_owned(), m.clone()]);
        }
        if let Some(dir) = &log_dir {
            let path = dir.path().join(format!("{id}.jsonl"));
            args.extend(["--apply-log".to_owned(), path.display().to_string()]);
            apply_logs.push(path);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        env.start_controller(&refs)
            .with_context(|| format!("starting {id}"))?;
        replicas.push(id);
    }
    let mut pids: Vec<(String, u32)> = env
        .controllers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("controller_{i}"), c.pid()))
        .collect();
    for (i, r) in env.repo_servers.iter_mut().enumerate() {
        pids.push((format!("repo_server_{i}"), r.process().pid()));
    }
    pids.push(("sim".to_owned(), env.sim.process().pid()));
    Ok(Installation {
        env,
        replicas,
        pids,
        apply_logs,
        _log_dir: log_dir,
    })
}

impl Installation {
    /// CPU time of every process now.
    pub fn cpu(&self) -> Vec<Duration> {
        self.pids
            .iter()
            .map(|(_, p)| cpu_time(*p).unwrap_or_default())
            .collect()
    }

    /// Records `<process>_cpu_s` (since `before`) of every process and the total as
    /// `<prefix>cpu_s`.
    pub fn record_cpu(&self, result: &mut BenchResult, prefix: &str, before: &[Duration]) {
        let mut total = 0.0;
        for ((label, _), (now, then)) in self.pids.iter().zip(self.cpu().iter().zip(before)) {
            let s = now.saturating_sub(*then).as_secs_f64();
            total += s;
            result.metric(&format!("{prefix}{label}_cpu_s"), s);
        }
        result.metric(&format!("{prefix}total_cpu_s"), total);
    }

    /// Records `<process>_peak_rss_mib` of every process.
    pub fn record_peak_rss(&self, result: &mut BenchResult) {
        for (label, pid) in &self.pids {
            let (_, peak) = rss_bytes(*pid).unwrap_or_default();
            result.metric(&format!("{label}_peak_rss_mib"), mib(peak));
        }
    }

    /// Creates every app and waits (bounded) until all are Synced and Healthy.
    pub async fn scale_phase(&self, config: &Config) -> anyhow::Result<Synced> {
        let started = Instant::now();
        self.env.create_apps(config.apps, 32).await?;
        let created_s = started.elapsed().as_secs_f64();
        let progress = self.env.wait_done(config.apps, config.timeout).await?;
        Ok(Synced {
            created_s,
            synced_s: started.elapsed().as_secs_f64(),
            done: progress.done,
        })
    }

    /// The scale phase, failing when not every app got done.
    pub async fn scale_phase_complete(&self, config: &Config) -> anyhow::Result<Synced> {
        let synced = self.scale_phase(config).await?;
        if synced.done < config.apps {
            anyhow::bail!(
                "only {} of {} apps Synced and Healthy after {:.0} s",
                synced.done,
                config.apps,
                synced.synced_s
            );
        }
        Ok(synced)
    }

    /// Parsed `/metrics` of every controller.
    pub async fn controller_samples(&self) -> anyhow::Result<Vec<Vec<prom_text::Sample>>> {
        let mut out = Vec::new();
        for i in 0..self.env.controllers.len() {
            out.push(prom_text::parse(&self.env.controller_metrics(i).await?));
        }
        Ok(out)
    }

    /// Writes to destination clusters counted by every controller so far (applies,
    /// creates, updates, patches and deletes that were not dry runs).
    pub async fn cluster_writes(&self) -> anyhow::Result<f64> {
        let samples = self.controller_samples().await?;
        Ok(samples
            .iter()
            .map(|s| {
                prom_text::sum(s, "argocd_app_k8s_request_total", |l| {
                    l.get("dry_run").map(String::as_str) != Some("true")
                        && l.get("verb")
                            .is_some_and(|v| !v.eq_ignore_ascii_case("get"))
                })
            })
            .sum())
    }

    /// Requests served by the simulator, by verb.
    pub async fn sim_requests(&self) -> anyhow::Result<serde_json::Map<String, Value>> {
        let stats = self.env.sim_stats().await?;
        Ok(stats
            .get("requests")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }
}

/// Bytes to MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// Requests of one verb in a `/sim/stats` map.
pub fn verb_count(requests: &serde_json::Map<String, Value>, verb: &str) -> u64 {
    requests.get(verb).and_then(Value::as_u64).unwrap_or(0)
}

/// Write verbs of the simulator's statistics.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
