//! `controller-scale`: time for A apps (one small ConfigMap each, automated sync) on C
//! simulated clusters to reach Synced + Healthy with N controllers and M repo-servers,
//! with the controllers' CPU seconds and peak RSS. Everything runs on loopback; the wait
//! is bounded by `--timeout`.

use std::time::{Duration, Instant};

use clap::Parser;
use keelson_bench::fleet_env::FleetEnv;
use keelson_bench::proc_stats::{cpu_time, rss_bytes};
use keelson_bench::results::BenchResult;
use keelson_bench::size_args::SizeArgs;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    size: SizeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    keelson_testbed::install_crypto_provider();
    if std::env::var_os("KEELSON_CONTROLLER_TEST_LOG").is_none() {
        eprintln!("hint: KEELSON_CONTROLLER_TEST_LOG=warn makes the controllers log less");
    }
    let mut env = FleetEnv::start(args.size.clusters).await?;
    env.write_apps(args.size.apps)?;
    env.start_repo_servers(args.size.repo_servers)?;
    let mut pids = Vec::new();
    for i in 0..args.size.controllers {
        let id = format!("controller-{i}");
        let coordination = if args.size.controllers > 1 {
            "kubernetes"
        } else {
            "none"
        };
        pids.push(env.start_controller(&[
            "--replica-id",
            &id,
            "--coordination",
            coordination,
            "--app-resync",
            "180s",
        ])?);
    }
    let cpu0: Vec<Duration> = pids
        .iter()
        .map(|p| cpu_time(*p).unwrap_or_default())
        .collect();
    let started = Instant::now();
    env.create_apps(args.size.apps, 32).await?;
    let created_s = started.elapsed().as_secs_f64();
    let progress = env
        .wait_done(args.size.apps, Duration::from_secs(args.size.timeout))
        .await?;
    let synced_s = started.elapsed().as_secs_f64();
    let mut result = BenchResult {
        scenario: "controller-scale".into(),
        size: format!("{}x{}", args.size.apps, args.size.clusters),
        ..BenchResult::default()
    };
    result.metric("apps", args.size.apps as u64);
    result.metric("clusters", args.size.clusters as u64);
    result.metric("controllers", args.size.controllers as u64);
    result.metric("repo_servers", args.size.repo_servers as u64);
    result.metric("created_all_s", created_s);
    result.metric("synced_all_s", synced_s);
    result.metric("synced_healthy_apps", progress.done as u64);
    for (i, pid) in pids.iter().enumerate() {
        let cpu = cpu_time(*pid).unwrap_or_default().saturating_sub(cpu0[i]);
        let (_, peak) = rss_bytes(*pid).unwrap_or_default();
        result.metric(&format!("controller_{i}_cpu_s"), cpu.as_secs_f64());
        result.metric(&format!("controller_{i}_peak_rss_mib"), peak / 1024 / 1024);
    }
    let sim_pid = env.sim.process().pid();
    result.metric(
        "sim_cpu_s",
        cpu_time(sim_pid).unwrap_or_default().as_secs_f64(),
    );
    for (i, r) in env.repo_servers.iter_mut().enumerate() {
        let pid = r.process().pid();
        result.metric(
            &format!("repo_server_{i}_cpu_s"),
            cpu_time(pid).unwrap_or_default().as_secs_f64(),
        );
    }
    let path = result.write(&args.size.results)?;
    println!("{}", serde_json::to_string_pretty(&result.to_json())?);
    eprintln!("wrote {}", path.display());
    if progress.done < args.size.apps {
        anyhow::bail!(
            "only {} of {} apps Synced and Healthy",
            progress.done,
            args.size.apps
        );
    }
    Ok(())
}
