//! `keelson admin …`: operator tools. `admin render` renders in process exactly what the
//! repo-server would return for a source and prints it (resolved SHA on stderr);
//! `admin health` and `admin diff` live in `admin_verdicts`.

use crate::admin_verdicts::{self, DiffCommand, HealthCommand};
use crate::repo_server_command::{RenderArgs, build_service};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use keelson_cache::CacheConfig;
use keelson_proto::repo_server::{ManifestRequest, Repository, Tracking};
use serde_json::{Value, json};
use std::io::Write;

/// `keelson admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Render an application source as the repo-server would, and print the manifests.
    Render(Box<RenderCommand>),
    /// Assess an object's health as the controller would; prints `{"status","message"}`.
    Health(HealthCommand),
    /// Compare a desired and a live object as the controller would; exit code 1 when
    /// they differ.
    Diff(DiffCommand),
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// Multi-document YAML.
    Yaml,
    /// A JSON array.
    Json,
}

/// Flags of `keelson admin render`.
#[derive(Debug, Args)]
pub struct RenderCommand {
    /// Repository URL, or a local path to a Git repository.
    #[arg(long, env = "KEELSON_RENDER_REPO")]
    repo: String,
    /// Branch, tag, HEAD or commit SHA.
    #[arg(long, env = "KEELSON_RENDER_REVISION", default_value = "HEAD")]
    revision: String,
    /// Path of the application inside the repository.
    #[arg(long, env = "KEELSON_RENDER_PATH", default_value = ".")]
    path: String,
    /// Helm parameter `name=value` (repeatable).
    #[arg(
        long = "helm-set",
        env = "KEELSON_RENDER_HELM_SET",
        value_delimiter = ','
    )]
    helm_set: Vec<String>,
    /// Helm values file, relative to the application path (repeatable).
    #[arg(long = "values", env = "KEELSON_RENDER_VALUES", value_delimiter = ',')]
    values: Vec<String>,
    /// Helm release name (default: the app name).
    #[arg(long, env = "KEELSON_RENDER_RELEASE_NAME")]
    release_name: Option<String>,
    /// Kustomize image override, e.g. `nginx=nginx:1.27` (repeatable).
    #[arg(
        long = "kustomize-image",
        env = "KEELSON_RENDER_KUSTOMIZE_IMAGE",
        value_delimiter = ','
    )]
    kustomize_image: Vec<String>,
    /// Directory recursion.
    #[arg(long, env = "KEELSON_RENDER_RECURSE")]
    recurse: bool,
    /// Application name (tracking label value).
    #[arg(long, env = "KEELSON_RENDER_APP_NAME", default_value = "preview")]
    app_name: String,
    /// Destination namespace.
    #[arg(long, env = "KEELSON_RENDER_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        env = "KEELSON_RENDER_OUTPUT",
        value_enum,
        default_value = "yaml"
    )]
    output: Output,
    #[command(flatten)]
    render: RenderArgs,
}

/// Runs an admin subcommand; the result is the process exit code (`admin diff` exits 1
/// when the objects differ, like `diff(1)`).
pub async fn run(cmd: AdminCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        AdminCommand::Render(r) => render(*r).await.map(|()| std::process::ExitCode::SUCCESS),
        AdminCommand::Health(h) => {
            admin_verdicts::health(h).map(|()| std::process::ExitCode::SUCCESS)
        }
        AdminCommand::Diff(d) => admin_verdicts::diff_files(d).map(|modified| {
            if modified {
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }),
    }
}

fn source_json(cmd: &RenderCommand, url: &str) -> Value {
    let mut source = json!({"repoURL": url, "path": cmd.path, "targetRevision": cmd.revision});
    if !cmd.helm_set.is_empty() || !cmd.values.is_empty() || cmd.release_name.is_some() {
        let parameters: Vec<Value> = cmd
            .helm_set
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                json!({"name": k, "value": v})
            })
            .collect();
        let mut helm = json!({"parameters": parameters, "valueFiles": cmd.values});
        if let Some(r) = &cmd.release_name {
            helm["releaseName"] = r.clone().into();
        }
        source["helm"] = helm;
    }
    if !cmd.kustomize_image.is_empty() {
        source["kustomize"] = json!({"images": cmd.kustomize_image});
    }
    if cmd.recurse {
        source["directory"] = json!({"recurse": true});
    }
    source
}

async fn render(cmd: RenderCommand) -> anyhow::Result<()> {
    let url = match std::fs::canonicalize(&cmd.repo) {
        Ok(local) if !cmd.repo.contains("://") => format!("file://{}", local.display()),
        _ => cmd.repo.clone(),
    };
    let registry = keelson_telemetry::Registry::new();
    let (service, _work) = build_service(&cmd.render, CacheConfig::default(), &registry).await?;
    let req = ManifestRequest {
        repo: Some(Repository {
            url: url.clone(),
            ..Repository::default()
        }),
        revision: cmd.revision.clone(),
        source_json: source_json(&cmd, &url).to_string(),
        app_name: cmd.app_name.clone(),
        namespace: cmd.namespace.clone(),
        tracking: Some(Tracking {
            method: "label".into(),
            ..Tracking::default()
        }),
        no_cache: true,
        ..ManifestRequest::default()
    };
    let resp = service
        .generate(req)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_status().message().to_owned()))?;
    eprintln!("revision {} ({})", resp.revision, resp.source_type);
    let objects: Vec<Value> = resp
        .manifests
        .iter()
        .map(|m| serde_json::from_str(m))
        .collect::<Result<_, _>>()
        .context("decoding manifests")?;
    let mut out = std::io::stdout().lock();
    match cmd.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&objects)?)?,
        Output::Yaml => {
            for o in &objects {
                writeln!(out, "---\n{}", serde_yaml_ng::to_string(o)?.trim_end())?;
            }
        }
    }
    Ok(())
}
