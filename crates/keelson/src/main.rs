//! The `keelson` binary: one executable for every Keelson process and client command.

mod admin_command;
mod admin_verdicts;
mod app_command;
mod controller_command;
mod demo_command;
mod demo_view;
mod fleet_args;
mod repo_server_command;
mod shard_command;
mod signals;

/// mimalloc instead of glibc's malloc: at 50,000 apps a controller's refreshes spent a
/// fifth of their CPU in glibc's free-list upkeep (`unlink_chunk`, `_int_malloc`) under
/// many threads allocating small objects.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
mod sim_command;

use clap::{Parser, Subcommand};

/// Keelson: GitOps continuous delivery for fleets of Kubernetes clusters.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, global = true, env = "KEELSON_LOG", default_value = "info")]
    log: String,
    /// Base OTLP/HTTP endpoint spans are exported to (`http://127.0.0.1:4318`; posts to
    /// `<endpoint>/v1/traces`). Unset: no export.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Kubernetes API simulator (many clusters in one process).
    Sim(sim_command::SimArgs),
    /// Run the application controller (refresh, status, sync operations).
    Controller(Box<controller_command::ControllerArgs>),
    /// Run the repo-server (Git mirrors, manifest rendering, cache; gRPC).
    RepoServer(Box<repo_server_command::RepoServerArgs>),
    /// Application commands (`app sync`, `app rollback`, `app terminate-op`, `app get`).
    #[command(subcommand)]
    App(app_command::AppCommand),
    /// Fleet commands (`shard status`).
    #[command(subcommand)]
    Shard(shard_command::ShardCommand),
    /// Operator tools (`admin render`, `admin health`, `admin diff`).
    #[command(subcommand)]
    Admin(admin_command::AdminCommand),
    /// Print the CustomResourceDefinitions of Application, AppProject and ApplicationSet.
    Crds,
    /// Run the zero-setup demo (simulator, repo-server and controller in one process).
    Demo(Box<demo_command::DemoArgs>),
}

impl Command {
    /// The subcommand as typed; the process is `keelson-<name>` in exported traces.
    fn name(&self) -> &'static str {
        match self {
            Command::Sim(_) => "sim",
            Command::Controller(_) => "controller",
            Command::RepoServer(_) => "repo-server",
            Command::App(_) => "app",
            Command::Shard(_) => "shard",
            Command::Admin(_) => "admin",
            Command::Crds => "crds",
            Command::Demo(_) => "demo",
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            // 2, not 1: `admin diff` uses 1 for "the objects differ", like diff(1).
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    // kube uses rustls with ring while other dependencies may pull aws-lc-rs: pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Held until `run` returns: dropping it exports the last spans.
    let _tracing = keelson_telemetry::init_tracing(&keelson_telemetry::TracingSettings {
        filter: cli.log.clone(),
        otlp_endpoint: cli.otlp_endpoint.clone(),
        service_name: format!("keelson-{}", cli.command.name()),
    })?;
    match cli.command {
        Command::Sim(args) => tokio::runtime::Runtime::new()?
            .block_on(sim_command::run(args))
            .map(|()| ExitCode::SUCCESS),
        Command::RepoServer(args) => tokio::runtime::Runtime::new()?
            .block_on(repo_server_command::run(*args))
            .map(|()| ExitCode::SUCCESS),
        Command::Controller(args) => tokio::runtime::Runtime::new()?
            .block_on(controller_command::run(*args))
            .map(|()| ExitCode::SUCCESS),
        Command::App(cmd) => tokio::runtime::Runtime::new()?
            .block_on(app_command::run(cmd))
            .map(|()| ExitCode::SUCCESS),
        Command::Shard(cmd) => tokio::runtime::Runtime::new()?
            .block_on(shard_command::run(cmd))
            .map(|()| ExitCode::SUCCESS),
        Command::Admin(cmd) => tokio::runtime::Runtime::new()?.block_on(admin_command::run(cmd)),
        Command::Crds => {
            print!("{}", keelson_model::crds::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => tokio::runtime::Runtime::new()?
            .block_on(demo_command::run(*args))
            .map(|()| ExitCode::SUCCESS),
    }
}
