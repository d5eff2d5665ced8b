//! Config-management plugins the way Argo CD's CMP runs them: discovery by file glob, then
//! the configured `init` and `generate` argv (no shell unless the config itself runs one) in
//! the app directory of the scratch checkout, with the `ARGOCD_APP_*` build environment,
//! `KUBE_VERSION`, `KUBE_API_VERSIONS`, the Application's plugin env as `ARGOCD_ENV_*` and its
//! parameters as `ARGOCD_APP_PARAMETERS` (JSON) and `PARAM_*`. Stdout is the manifest stream.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use keelson_model::source::PluginParameter;
use serde_json::{Map, Value, json};
use walkdir::WalkDir;

use crate::render::confine;
use crate::render::manifest::parse_yaml_stream;
use crate::render::process::{self, Invocation, MINIMAL_PATH};
use crate::render::{PluginConfig, RenderContext, RenderError, Tools};

/// How deep discovery globs look below the app directory.
const DISCOVER_DEPTH: usize = 8;

/// Bound on entries examined by discovery.
const DISCOVER_ENTRIES: usize = 100_000;

/// The configured plugin (by name, sorted for determinism) whose discovery glob matches a file
/// in `app_dir`.
pub fn discover<'a>(app_dir: &Path, tools: &'a Tools) -> Option<&'a PluginConfig> {
    let mut plugins: Vec<&PluginConfig> = tools.plugins.values().collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    plugins.into_iter().find(|p| {
        p.discover_file_glob
            .as_deref()
            .and_then(compile)
            .is_some_and(|glob| matches_any(app_dir, &glob))
    })
}

fn compile(pattern: &str) -> Option<GlobMatcher> {
    let pattern = pattern.trim().trim_start_matches("./");
    if pattern.is_empty() {
        return None;
    }
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .ok()?;
    Some(glob.compile_matcher())
}

fn matches_any(app_dir: &Path, glob: &GlobMatcher) -> bool {
    WalkDir::new(app_dir)
        .follow_links(false)
        .max_depth(DISCOVER_DEPTH)
        .into_iter()
        .take(DISCOVER_ENTRIES)
        .filter_map(Result::ok)
        .filter(|e| e.depth() > 0)
        .any(|e| {
            e.path()
                .strip_prefix(app_dir)
                .is_ok_and(|rel| glob.is_match(rel))
        })
}

/// Selects the plugin: by name when `source.plugin.name` is set, else by discovery.
fn select<'a>(ctx: &RenderContext<'_>, tools: &'a Tools) -> Result<&'a PluginConfig, RenderError> {
    let name = ctx
        .req
        .source
        .plugin
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .filter(|n| !n.is_empty());
    match name {
        Some(name) => tools
            .plugins
            .get(name)
            .or_else(|| tools.plugins.values().find(|p| p.name == name))
            .ok_or_else(|| RenderError::PluginNotConfigured(name.to_string())),
        None => discover(ctx.app_dir, tools).ok_or(RenderError::PluginNotDiscovered),
    }
}

/// Runs the plugin and parses its output.
pub async fn render(ctx: &RenderContext<'_>) -> Result<Vec<Value>, RenderError> {
    let tools = ctx.req.tools;
    let plugin = select(ctx, tools)?;
    let home = tempfile::tempdir().map_err(RenderError::Scratch)?;
    let env = environment(ctx, home.path());
    if let Some(init) = plugin.init.as_ref().filter(|argv| !argv.is_empty()) {
        run_argv(ctx, plugin, init, &env).await?;
    }
    if plugin.generate.is_empty() {
        return Err(RenderError::PluginCommandEmpty(plugin.name.clone()));
    }
    let stdout = run_argv(ctx, plugin, &plugin.generate, &env).await?;
    let text = String::from_utf8(stdout)
        .map_err(|_| RenderError::BinaryFile(format!("output of plugin {:?}", plugin.name)))?;
    Ok(parse_yaml_stream(
        &text,
        &format!("output of plugin {:?}", plugin.name),
    )?)
}

async fn run_argv(
    ctx: &RenderContext<'_>,
    plugin: &PluginConfig,
    argv: &[String],
    env: &[(String, OsString)],
) -> Result<Vec<u8>, RenderError> {
    let tool = format!("plugin {}", plugin.name);
    let Some((program, args)) = argv.split_first() else {
        return Err(RenderError::PluginCommandEmpty(plugin.name.clone()));
    };
    let program = program_path(ctx, &tool, program)?;
    let limits = ctx.req.limits;
    Ok(process::run(Invocation {
        tool,
        program,
        args: args.iter().map(OsString::from).collect(),
        cwd: ctx.app_dir,
        env: env.to_vec(),
        timeout: limits.timeout,
        max_output: limits.max_output_bytes,
    })
    .await?)
}

/// Locates the plugin program: a relative path with a directory part (`./gen.sh`) is taken
/// relative to the app directory and must stay inside the checkout; anything else is an
/// absolute path or a name on the repo-server's `PATH`.
fn program_path(
    ctx: &RenderContext<'_>,
    tool: &str,
    program: &str,
) -> Result<PathBuf, RenderError> {
    let path = Path::new(program);
    if path.is_absolute() || path.components().count() == 1 {
        return Ok(process::locate(tool, path)?);
    }
    let (resolved, exists) =
        confine::resolve_reference(ctx.root, ctx.app_dir, program, "plugin command")?;
    if !exists {
        return Err(RenderError::ToolMissing {
            tool: tool.to_string(),
            looked_at: resolved,
        });
    }
    Ok(resolved)
}

/// The plugin's complete environment.
fn environment(ctx: &RenderContext<'_>, home: &Path) -> Vec<(String, OsString)> {
    let build = ctx.build_env();
    let mut env: Vec<(String, OsString)> = vec![
        ("PATH".into(), MINIMAL_PATH.into()),
        ("HOME".into(), home.as_os_str().to_owned()),
    ];
    env.extend(
        build
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), OsString::from(v))),
    );
    env.push(("KUBE_VERSION".into(), ctx.req.kube_version.into()));
    env.push((
        "KUBE_API_VERSIONS".into(),
        ctx.req.api_versions.join(",").into(),
    ));
    if let Some(plugin) = ctx.req.source.plugin.as_ref() {
        for entry in plugin.env.iter().flatten() {
            let value = build.substitute(entry.value.as_deref().unwrap_or(""));
            env.push((format!("ARGOCD_ENV_{}", entry.name), value.into()));
        }
        let params = plugin.parameters.as_deref().unwrap_or(&[]);
        env.extend(
            parameter_env(params)
                .into_iter()
                .map(|(k, v)| (k, OsString::from(v))),
        );
    }
    env
}

/// `ARGOCD_APP_PARAMETERS` and the `PARAM_*` variables, as Argo CD derives them.
pub fn parameter_env(params: &[PluginParameter]) -> Vec<(String, String)> {
    let json: Vec<Value> = params.iter().map(parameter_json).collect();
    let mut out = vec![(
        "ARGOCD_APP_PARAMETERS".to_string(),
        Value::Array(json).to_string(),
    )];
    for p in params {
        let base = format!("PARAM_{}", escape(&p.name));
        if let Some(s) = &p.string {
            out.push((base.clone(), s.clone()));
        }
        for (key, value) in p.map.iter().flatten() {
            out.push((format!("{base}_{}", escape(key)), value.clone()));
        }
        for (i, value) in p.array.iter().flatten().enumerate() {
            out.push((format!("{base}_{i}"), value.clone()));
        }
    }
    out
}

fn parameter_json(p: &PluginParameter) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), json!(p.name));
    if let Some(s) = &p.string {
        obj.insert("string".into(), json!(s));
    }
    if let Some(m) = &p.map {
        obj.insert("map".into(), json!(m));
    }
    if let Some(a) = &p.array {
        obj.insert("array".into(), json!(a));
    }
    Value::Object(obj)
}

/// Upper-cases and replaces everything but `[A-Za-z0-9_]` with `_`.
fn escape(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn parameters_become_env() {
        let params = vec![
            PluginParameter {
                name: "image-tag".into(),
                string: Some("v1".into()),
                ..Default::default()
            },
            PluginParameter {
                name: "labels".into(),
                map: Some(BTreeMap::from([("team.name".to_string(), "a".to_string())])),
                ..Default::default()
            },
            PluginParameter {
                name: "list".into(),
                array: Some(vec!["x".into(), "y".into()]),
                ..Default::default()
            },
        ];
        let env = parameter_env(&params);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("PARAM_IMAGE_TAG").unwrap(), "v1");
        assert_eq!(get("PARAM_LABELS_TEAM_NAME").unwrap(), "a");
        assert_eq!(get("PARAM_LIST_1").unwrap(), "y");
        let json: Value = serde_json::from_str(&get("ARGOCD_APP_PARAMETERS").unwrap()).unwrap();
        assert_eq!(json[0]["string"], "v1");
    }

    #[test]
    fn discovery_uses_the_glob() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.cue"), "").unwrap();
        let plugin = PluginConfig {
            name: "cue".into(),
            init: None,
            generate: vec!["cue".into()],
            discover_file_glob: Some("./*.cue".into()),
        };
        let tools = Tools {
            helm: "helm".into(),
            kustomize: crate::render::KustomizeTool::Kubectl("kubectl".into()),
            plugins: [("cue".to_string(), plugin)].into_iter().collect(),
        };
        assert_eq!(discover(dir.path(), &tools).unwrap().name, "cue");
        let empty = tempfile::tempdir().unwrap();
        assert!(discover(empty.path(), &tools).is_none());
    }
}
