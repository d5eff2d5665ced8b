//! The Kustomize renderer: applies the Application's kustomize options to the app's
//! kustomization file the way `kustomize edit` (as Argo CD runs it) would (see [`edit`]),
//! checks every kustomization reachable from the app for remote references and for files or
//! directories outside the checkout, then runs `kubectl kustomize <dir>` or
//! `kustomize build <dir>` with the default load restrictor, no `git` on `PATH` and proxies
//! pointing nowhere, and parses the YAML stream.

mod edit;

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::render::confine::{self, ConfineError};
use crate::render::helm::DEAD_PROXY;
use crate::render::manifest::parse_yaml_stream;
use crate::render::process::{self, Invocation};
use crate::render::{KUSTOMIZATION_NAMES, KustomizeTool, RenderContext, RenderError};

/// Bound on kustomization files visited by the reference scan.
const MAX_KUSTOMIZATIONS: usize = 1_000;

/// Renders a Kustomize app.
pub async fn render(ctx: &RenderContext<'_>) -> Result<Vec<Value>, RenderError> {
    let file = kustomization_file(ctx.app_dir).ok_or_else(|| RenderError::Kustomization {
        file: ctx.display_path(ctx.app_dir),
        message: "no kustomization.yaml, kustomization.yml or Kustomization in the app directory"
            .into(),
    })?;
    if let Some(options) = ctx.req.source.kustomize.as_ref() {
        edit::apply(ctx, &file, options)?;
    }
    scan_references(ctx)?;
    let scratch = tempfile::tempdir().map_err(RenderError::Scratch)?;
    let (tool, configured, mut args): (&str, &Path, Vec<OsString>) = match &ctx.req.tools.kustomize
    {
        KustomizeTool::Kubectl(p) => ("kubectl", p, vec!["kustomize".into()]),
        KustomizeTool::Kustomize(p) => ("kustomize", p, vec!["build".into()]),
    };
    args.push(ctx.app_dir.as_os_str().to_owned());
    let program = process::locate(tool, configured)?;
    let limits = ctx.req.limits;
    let stdout = process::run(Invocation {
        tool: tool.into(),
        program,
        args,
        cwd: ctx.app_dir,
        env: environment(scratch.path())?,
        timeout: limits.timeout,
        max_output: limits.max_output_bytes,
    })
    .await?;
    let text = String::from_utf8(stdout)
        .map_err(|_| RenderError::BinaryFile("kustomize output".into()))?;
    Ok(parse_yaml_stream(&text, "kustomize output")?)
}

/// The kustomization file of `dir`, if any.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The tool's environment: an empty `PATH` (so remote bases cannot run `git`), a private
/// home, and proxies that refuse connections.
fn environment(scratch: &Path) -> Result<Vec<(String, OsString)>, RenderError> {
    let empty_bin = scratch.join("bin");
    let home = scratch.join("home");
    for dir in [&empty_bin, &home] {
        std::fs::create_dir_all(dir).map_err(RenderError::Scratch)?;
    }
    Ok(vec![
        ("PATH".into(), empty_bin.into_os_string()),
        ("HOME".into(), home.clone().into_os_string()),
        ("XDG_CONFIG_HOME".into(), home.into_os_string()),
        ("KUBECONFIG".into(), "/dev/null".into()),
        ("HTTP_PROXY".into(), DEAD_PROXY.into()),
        ("HTTPS_PROXY".into(), DEAD_PROXY.into()),
        ("http_proxy".into(), DEAD_PROXY.into()),
        ("https_proxy".into(), DEAD_PROXY.into()),
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
    ])
}

/// Walks every kustomization reachable from the app directory and refuses remote references
/// and references leaving the checkout.
fn scan_references(ctx: &RenderContext<'_>) -> Result<(), RenderError> {
    let mut queue = VecDeque::from([ctx.app_dir.to_path_buf()]);
    let mut seen: HashSet<PathBuf> = HashSet::new();
    while let Some(dir) = queue.pop_front() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        if seen.len() > MAX_KUSTOMIZATIONS {
            return Err(ConfineError::Scan(format!(
                "more than {MAX_KUSTOMIZATIONS} kustomizations"
            ))
            .into());
        }
        let Some(file) = kustomization_file(&dir) else {
            continue;
        };
        let shown = ctx.display_path(&file);
        let text =
            crate::render::directory::read_text(&file, &shown, ctx.req.limits.max_file_bytes)?;
        let doc: Value =
            serde_yaml_ng::from_str(&text).map_err(|e| RenderError::Kustomization {
                file: shown.clone(),
                message: e.to_string(),
            })?;
        for reference in references(&doc) {
            let path = check_reference(ctx.root, &dir, &reference, &shown)?;
            if path.is_dir() {
                queue.push_back(path);
            }
        }
    }
    Ok(())
}

/// Every path-like reference in a kustomization document.
fn references(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push_str = |v: &Value| {
        if let Some(s) = v
            .as_str()
            .filter(|s| !s.contains('\n') && !s.trim().is_empty())
        {
            out.push(s.trim().to_string());
        }
    };
    for key in [
        "resources",
        "bases",
        "components",
        "crds",
        "configurations",
        "transformers",
        "generators",
        "validators",
        "patchesStrategicMerge",
    ] {
        doc.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .for_each(&mut push_str);
    }
    for key in ["patches", "patchesJson6902", "replacements"] {
        for item in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
            item.get("path").into_iter().for_each(&mut push_str);
        }
    }
    doc.get("openapi")
        .and_then(|o| o.get("path"))
        .into_iter()
        .for_each(&mut push_str);
    for key in ["configMapGenerator", "secretGenerator"] {
        for item in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
            for file in item
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(s) = file.as_str() {
                    let path = s.split_once('=').map(|(_, p)| p).unwrap_or(s);
                    push_str(&Value::String(path.to_string()));
                }
            }
            item.get("envs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .for_each(&mut push_str);
            item.get("env").into_iter().for_each(&mut push_str);
        }
    }
    out
}

/// Whether kustomize would fetch `reference` remotely.
fn looks_remote(reference: &str, exists_locally: bool) -> bool {
    if confine::is_url(reference) || reference.contains("?ref=") || reference.contains("?version=")
    {
        return true;
    }
    let hosts = [
        "github.com/",
        "gitlab.com/",
        "bitbucket.org/",
        "dev.azure.com/",
    ];
    if hosts.iter().any(|h| reference.starts_with(h)) {
        return true;
    }
    if exists_locally {
        return false;
    }
    let first = reference.split('/').next().unwrap_or("");
    reference.contains('/') && first.contains('.') && first != "." && first != ".."
}

/// Resolves one reference relative to the kustomization directory; it must be local and, as
/// written and with symlinks resolved, inside the checkout root.
fn check_reference(
    root: &Path,
    dir: &Path,
    reference: &str,
    file: &str,
) -> Result<PathBuf, RenderError> {
    let outside = || ConfineError::Outside {
        what: "kustomize reference",
        reference: reference.to_string(),
    };
    let joined = dir.join(reference);
    let exists = joined.exists();
    if looks_remote(reference, exists) {
        return Err(RenderError::RemoteResource {
            file: file.to_string(),
            reference: reference.to_string(),
        });
    }
    let lexical = confine::normalize(&joined)
        .filter(|p| confine::is_inside(p, root))
        .ok_or_else(outside)?;
    match joined.canonicalize() {
        Ok(real) if confine::is_inside(&real, root) => Ok(real),
        Ok(_) => Err(outside().into()),
        Err(_) => Ok(lexical),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_recognised() {
        assert!(looks_remote(
            "https://github.com/org/repo//base?ref=v1",
            false
        ));
        assert!(looks_remote("github.com/org/repo/base", false));
        assert!(looks_remote("example.com/org/repo", false));
        assert!(looks_remote("git@github.com:org/repo.git", false));
        assert!(!looks_remote("../base", false));
        assert!(!looks_remote("deploy.yaml", false));
        assert!(!looks_remote("my.dir/x", true));
    }

    #[test]
    fn references_cover_the_fields() {
        let doc: Value = serde_yaml_ng::from_str(
            "resources: [a.yaml, ../base]\npatches:\n- path: p.yaml\n- patch: |\n    inline\nconfigMapGenerator:\n- name: c\n  files: [k=f.txt, g.txt]\n  envs: [e.env]\n",
        )
        .unwrap();
        let refs = references(&doc);
        assert_eq!(
            refs,
            ["a.yaml", "../base", "p.yaml", "f.txt", "g.txt", "e.env"]
        );
    }
}
