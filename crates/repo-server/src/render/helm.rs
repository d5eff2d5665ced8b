//! The Helm renderer: `helm template` on the local chart in the app directory, with the
//! Application's release name, namespace, value files (resolved and confined like Argo CD:
//! relative to the chart, absolute ones relative to the repository root, remote URLs refused),
//! inline values (`valuesObject` over `values`), `--set`/`--set-string`/`--set-file`
//! parameters, kube version and API versions, and CRDs included unless `skipCrds`. Helm runs
//! with private, empty config/cache/data/plugin directories and proxies pointing nowhere, so it
//! never reaches the network; chart dependencies must be vendored under `charts/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use keelson_model::source::HelmSource;
use serde_json::Value;

use crate::render::confine;
use crate::render::env::BuildEnv;
use crate::render::manifest::parse_yaml_stream;
use crate::render::process::{self, Invocation, MINIMAL_PATH};
use crate::render::{RenderContext, RenderError};

/// A proxy that refuses every connection, so no HTTP(S) request can leave the host.
pub const DEAD_PROXY: &str = "http://127.0.0.1:9";

/// Renders a Helm chart app.
pub async fn render(ctx: &RenderContext<'_>) -> Result<Vec<Value>, RenderError> {
    let helm = ctx.req.source.helm.clone().unwrap_or_default();
    let program = process::locate("helm", &ctx.req.tools.helm)?;
    let scratch = tempfile::tempdir().map_err(RenderError::Scratch)?;
    let args = arguments(ctx, &helm, scratch.path())?;
    let env = environment(scratch.path())?;
    let limits = ctx.req.limits;
    let stdout = process::run(Invocation {
        tool: "helm".into(),
        program,
        args,
        cwd: ctx.app_dir,
        env,
        timeout: limits.timeout,
        max_output: limits.max_output_bytes,
    })
    .await?;
    let text = String::from_utf8(stdout)
        .map_err(|_| RenderError::BinaryFile("helm template output".into()))?;
    Ok(parse_yaml_stream(&text, "helm template output")?)
}

/// The `helm template` argument list.
fn arguments(
    ctx: &RenderContext<'_>,
    helm: &HelmSource,
    scratch: &Path,
) -> Result<Vec<OsString>, RenderError> {
    let build = ctx.build_env();
    let release = helm
        .release_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(ctx.req.app_name);
    let namespace = helm
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(ctx.req.namespace);
    let mut args: Vec<OsString> = vec!["template".into(), release.into(), ".".into()];
    if !namespace.is_empty() {
        args.extend(["--namespace".into(), namespace.into()]);
    }
    if !ctx.req.kube_version.is_empty() {
        args.extend(["--kube-version".into(), ctx.req.kube_version.into()]);
    }
    for api in ctx.req.api_versions {
        args.extend(["--api-versions".into(), api.into()]);
    }
    for file in value_files(ctx, helm, &build)? {
        args.extend(["--values".into(), file.into_os_string()]);
    }
    if let Some(inline) = inline_values(helm) {
        let path = scratch.join("inline-values.yaml");
        std::fs::write(&path, inline).map_err(|source| RenderError::ReadFile {
            path: path.clone(),
            source,
        })?;
        args.extend(["--values".into(), path.into_os_string()]);
    }
    for p in helm.parameters.iter().flatten() {
        let flag = if p.force_string.unwrap_or(false) {
            "--set-string"
        } else {
            "--set"
        };
        let value = escape_set_value(&build.substitute(p.value.as_deref().unwrap_or("")));
        args.extend([flag.into(), format!("{}={}", p.name, value).into()]);
    }
    for p in helm.file_parameters.iter().flatten() {
        let reference = build.substitute(&p.path);
        if confine::is_url(&reference) {
            return Err(RenderError::RemoteValueFile(reference));
        }
        let (path, exists) =
            confine::resolve_reference(ctx.root, ctx.app_dir, &reference, "helm file parameter")?;
        if !exists {
            return Err(RenderError::ValueFileMissing(reference));
        }
        let mut arg = OsString::from(format!("{}=", p.name));
        arg.push(path.as_os_str());
        args.extend(["--set-file".into(), arg]);
    }
    if helm.skip_crds.unwrap_or(false) {
        args.push("--skip-crds".into());
    } else {
        args.push("--include-crds".into());
    }
    Ok(args)
}

/// Resolves `valueFiles`: confined to the repository, remote URLs refused, missing files an
/// error unless `ignoreMissingValueFiles`.
fn value_files(
    ctx: &RenderContext<'_>,
    helm: &HelmSource,
    build: &BuildEnv,
) -> Result<Vec<PathBuf>, RenderError> {
    let ignore_missing = helm.ignore_missing_value_files.unwrap_or(false);
    let mut out = Vec::new();
    for raw in helm.value_files.iter().flatten() {
        let reference = build.substitute(raw);
        if confine::is_url(&reference) {
            return Err(RenderError::RemoteValueFile(reference));
        }
        let (path, exists) =
            confine::resolve_reference(ctx.root, ctx.app_dir, &reference, "helm value file")?;
        if exists && path.is_file() {
            out.push(path);
        } else if !ignore_missing {
            return Err(RenderError::ValueFileMissing(reference));
        }
    }
    Ok(out)
}

/// The inline values as YAML text: `valuesObject` when set, else `values`.
fn inline_values(helm: &HelmSource) -> Option<String> {
    if let Some(obj) = helm.values_object.as_ref().filter(|v| !v.is_null()) {
        // JSON is YAML; `Display` for a JSON value cannot fail.
        return Some(obj.to_string());
    }
    helm.values.clone().filter(|v| !v.trim().is_empty())
}

/// Escapes unescaped commas so a `--set` value stays one value, unless it is a `{a,b}` list.
fn escape_set_value(value: &str) -> String {
    if value.starts_with('{') && value.ends_with('}') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut prev = '\0';
    for c in value.chars() {
        if c == ',' && prev != '\\' {
            out.push('\\');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Helm's environment: private directories, no plugins, no reachable proxy.
fn environment(scratch: &Path) -> Result<Vec<(String, OsString)>, RenderError> {
    let dir = |name: &str| -> Result<OsString, RenderError> {
        let path = scratch.join(name);
        std::fs::create_dir_all(&path).map_err(RenderError::Scratch)?;
        Ok(path.into_os_string())
    };
    Ok(vec![
        ("PATH".into(), MINIMAL_PATH.into()),
        ("HOME".into(), dir("home")?),
        ("HELM_CACHE_HOME".into(), dir("cache")?),
        ("HELM_CONFIG_HOME".into(), dir("config")?),
        ("HELM_DATA_HOME".into(), dir("data")?),
        ("HELM_PLUGINS".into(), dir("plugins")?),
        ("HTTP_PROXY".into(), DEAD_PROXY.into()),
        ("HTTPS_PROXY".into(), DEAD_PROXY.into()),
        ("http_proxy".into(), DEAD_PROXY.into()),
        ("https_proxy".into(), DEAD_PROXY.into()),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn commas_are_escaped_like_argo_cd() {
        assert_eq!(escape_set_value("a,b"), "a\\,b");
        assert_eq!(escape_set_value("a\\,b"), "a\\,b");
        assert_eq!(escape_set_value("{a,b}"), "{a,b}");
    }

    #[test]
    fn values_object_wins() {
        let helm = HelmSource {
            values: Some("a: 1".into()),
            values_object: Some(serde_json::json!({"b": 2})),
            ..Default::default()
        };
        assert_eq!(inline_values(&helm).unwrap(), r#"{"b":2}"#);
    }
}
