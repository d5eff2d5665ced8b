//! `keelson admin health` and `keelson admin diff`: Keelson's health and sync verdicts for
//! objects given as files, so that people and conformance suites can check them.

use anyhow::Context;
use clap::Args;
use keelson_diff::{DiffConfig, IgnoreRules, diff, unified_diff};
use keelson_health::{HealthAssessor, HealthConfig, LuaEngine};
use keelson_model::ResourceKey;
use keelson_model::application::ResourceIgnoreDifferences;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Flags of `keelson admin health`.
#[derive(Debug, Args)]
pub struct HealthCommand {
    /// The object (YAML or JSON).
    file: PathBuf,
    /// A Lua health script to run instead of the configured/built-in checks.
    #[arg(long, env = "KEELSON_HEALTH_LUA")]
    lua: Option<PathBuf>,
    /// Open the full Lua libraries for `--lua` (argocd-cm `useOpenLibs`).
    #[arg(long, env = "KEELSON_HEALTH_OPEN_LIBS")]
    open_libs: bool,
    /// An argocd-cm ConfigMap whose `resource.customizations.*` keys apply.
    #[arg(long, env = "KEELSON_ARGOCD_CM")]
    argocd_cm: Option<PathBuf>,
}

/// Flags of `keelson admin diff`.
#[derive(Debug, Args)]
pub struct DiffCommand {
    /// The desired object, as rendered from Git (YAML or JSON).
    desired: PathBuf,
    /// The live object, as read from the cluster (YAML or JSON).
    live: PathBuf,
    /// A YAML list of Argo CD `ignoreDifferences` entries.
    #[arg(long, env = "KEELSON_DIFF_IGNORE_DIFFERENCES")]
    ignore_differences: Option<PathBuf>,
    /// An argocd-cm ConfigMap whose `resource.customizations.ignoreDifferences.*` apply.
    #[arg(long, env = "KEELSON_ARGOCD_CM")]
    argocd_cm: Option<PathBuf>,
    /// Field manager Keelson applies with.
    #[arg(long, env = "KEELSON_FIELD_MANAGER", default_value = keelson_diff::DEFAULT_MANAGER)]
    manager: String,
}

fn read_document<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn argocd_cm_data(path: Option<&Path>) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(path) = path else {
        return Ok(BTreeMap::new());
    };
    let cm: Value = read_document(path)?;
    match cm.get("data") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(data) => serde_json::from_value(data.clone())
            .with_context(|| format!("{}: data must map keys to strings", path.display())),
    }
}

/// Prints `{"status":…,"message":…}`; `status` is null when no check applies to the kind.
pub fn health(cmd: HealthCommand) -> anyhow::Result<()> {
    let obj: Value = read_document(&cmd.file)?;
    let assessment = match &cmd.lua {
        Some(script) => {
            let script = std::fs::read_to_string(script)
                .with_context(|| format!("reading {}", script.display()))?;
            Some(LuaEngine::default().run_health(&script, &obj, cmd.open_libs)?)
        }
        None => {
            let config = HealthConfig::from_config_map(&argocd_cm_data(cmd.argocd_cm.as_deref())?)?;
            HealthAssessor::new(config).assess(&obj)
        }
    };
    let out = match assessment {
        Some(a) => json!({"status": a.status.as_str(), "message": a.message}),
        None => json!({"status": null, "message": "no health check for this kind"}),
    };
    println!("{out}");
    Ok(())
}

/// Prints `{"modified":…,"mode":…}` then the unified diff; returns whether they differ.
pub fn diff_files(cmd: DiffCommand) -> anyhow::Result<bool> {
    let desired: Value = read_document(&cmd.desired)?;
    let live: Value = read_document(&cmd.live)?;
    let entries: Vec<ResourceIgnoreDifferences> = match &cmd.ignore_differences {
        Some(path) => read_document(path)?,
        None => Vec::new(),
    };
    let ignore = IgnoreRules::new(&entries, &argocd_cm_data(cmd.argocd_cm.as_deref())?)?;
    let config = DiffConfig::default()
        .with_ignore(ignore)
        .with_manager(cmd.manager);
    let result = diff(Some(&desired), Some(&live), &config)?;
    let label = ResourceKey::from_object(&desired)
        .map(|k| k.to_string())
        .unwrap_or_else(|_| cmd.desired.display().to_string());
    println!(
        "{}",
        json!({"modified": result.modified, "mode": format!("{:?}", result.mode)})
    );
    if result.modified {
        print!("{}", unified_diff(&result, &label));
    }
    Ok(result.modified)
}
