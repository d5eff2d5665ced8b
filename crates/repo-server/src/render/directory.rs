//! The directory renderer: walks the app directory (recursing only with
//! `directory.recurse`), applies include/exclude globs to paths relative to the app
//! directory, reads `.yaml`/`.yml`/`.json` files (bounded in size, text only, symlinks
//! confined to the checkout) and evaluates `.jsonnet` entrypoints with [`jsonnet`].
//!
//! A YAML file none of whose documents looks like a Kubernetes object (no `apiVersion`, no
//! `kind`) is ignored, like Argo CD ignores non-manifest YAML such as Helm values files.
//!
//! [`jsonnet`]: crate::render::jsonnet

use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde_json::Value;
use walkdir::WalkDir;

use crate::render::confine::{self, ConfineError};
use crate::render::manifest::{self, ManifestError};
use crate::render::{RenderContext, RenderError, jsonnet};

/// Bound on files visited in one app directory.
const MAX_FILES: usize = 200_000;

/// What to do with a file found in the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKind {
    Yaml,
    Json,
    Jsonnet,
}

/// Renders a directory app.
pub async fn render(ctx: &RenderContext<'_>) -> Result<Vec<Value>, RenderError> {
    let dir = ctx.req.source.directory.clone().unwrap_or_default();
    let recurse = dir.recurse.unwrap_or(false);
    let include = compile_glob(dir.include.as_deref())?;
    let exclude = compile_glob(dir.exclude.as_deref())?;
    let files = list_files(ctx, recurse, include.as_ref(), exclude.as_ref())?;
    let limits = ctx.req.limits;
    let mut total = 0usize;
    let mut objects = Vec::new();
    for (path, real, kind) in files {
        let shown = ctx.display_path(&path);
        if kind == FileKind::Jsonnet {
            let objs = jsonnet::evaluate(ctx, &real, &shown).await?;
            objects.extend(objs);
            continue;
        }
        let text = read_text(&real, &shown, limits.max_file_bytes)?;
        total += text.len();
        if total > limits.max_output_bytes {
            return Err(RenderError::OutputTooLarge {
                limit: limits.max_output_bytes,
            });
        }
        objects.extend(parse_file(&text, &shown, &kind)?);
    }
    Ok(objects)
}

fn compile_glob(pattern: Option<&str>) -> Result<Option<GlobMatcher>, RenderError> {
    let Some(pattern) = pattern.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let glob = Glob::new(pattern).map_err(|e| {
        RenderError::Manifest(ManifestError::NotAnObject {
            origin: format!("glob {pattern:?}"),
            index: 0,
            reason: e.to_string(),
        })
    })?;
    Ok(Some(glob.compile_matcher()))
}

/// Lists the manifest files to read, in walk order: `(path, real path, kind)`.
fn list_files(
    ctx: &RenderContext<'_>,
    recurse: bool,
    include: Option<&GlobMatcher>,
    exclude: Option<&GlobMatcher>,
) -> Result<Vec<(PathBuf, PathBuf, FileKind)>, RenderError> {
    let max_depth = if recurse { usize::MAX } else { 1 };
    let walker = WalkDir::new(ctx.app_dir)
        .follow_links(false)
        .max_depth(max_depth)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git");
    let mut out = Vec::new();
    for (count, entry) in walker.enumerate() {
        if count > MAX_FILES {
            return Err(ConfineError::Scan(format!(
                "more than {MAX_FILES} files in the app directory"
            ))
            .into());
        }
        let entry = entry.map_err(|e| ConfineError::Scan(e.to_string()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let Some(kind) = kind_of(entry.path()) else {
            continue;
        };
        let rel = entry
            .path()
            .strip_prefix(ctx.app_dir)
            .unwrap_or(entry.path());
        let real = if entry.path_is_symlink() {
            match confined_target(ctx, entry.path())? {
                Some(real) => real,
                None => continue,
            }
        } else {
            entry.path().to_path_buf()
        };
        if exclude.is_some_and(|g| g.is_match(rel)) || include.is_some_and(|g| !g.is_match(rel)) {
            continue;
        }
        out.push((entry.path().to_path_buf(), real, kind));
    }
    Ok(out)
}

fn kind_of(path: &Path) -> Option<FileKind> {
    match path.extension()?.to_str()? {
        "yaml" | "yml" => Some(FileKind::Yaml),
        "json" => Some(FileKind::Json),
        "jsonnet" => Some(FileKind::Jsonnet),
        _ => None,
    }
}

/// The target of a symlinked manifest: an error if it leaves the checkout, `None` if it is
/// dangling or not a regular file (skipped, as Argo CD does).
fn confined_target(ctx: &RenderContext<'_>, link: &Path) -> Result<Option<PathBuf>, RenderError> {
    let shown = ctx.display_path(link);
    match link.canonicalize() {
        Ok(real) if confine::is_inside(&real, ctx.root) => Ok(real.is_file().then_some(real)),
        Ok(_) => Err(ConfineError::SymlinkOutside(shown).into()),
        Err(_) => {
            let target = std::fs::read_link(link).map_err(|source| RenderError::ReadFile {
                path: link.into(),
                source,
            })?;
            let joined = link.parent().unwrap_or(ctx.root).join(target);
            match confine::normalize(&joined) {
                Some(p) if confine::is_inside(&p, ctx.root) => Ok(None),
                _ => Err(ConfineError::SymlinkOutside(shown).into()),
            }
        }
    }
}

/// Reads a manifest file: bounded in size, no NUL bytes, valid UTF-8 (a BOM is dropped).
pub fn read_text(path: &Path, shown: &str, max: usize) -> Result<String, RenderError> {
    let meta = std::fs::metadata(path).map_err(|source| RenderError::ReadFile {
        path: path.into(),
        source,
    })?;
    if meta.len() > max as u64 {
        return Err(RenderError::FileTooLarge {
            path: shown.to_string(),
            size: meta.len(),
            limit: max,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| RenderError::ReadFile {
        path: path.into(),
        source,
    })?;
    if bytes.len() > max {
        return Err(RenderError::FileTooLarge {
            path: shown.to_string(),
            size: bytes.len() as u64,
            limit: max,
        });
    }
    if bytes.contains(&0) {
        return Err(RenderError::BinaryFile(shown.to_string()));
    }
    let text = String::from_utf8(bytes).map_err(|_| RenderError::BinaryFile(shown.to_string()))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(stripped) => stripped.to_string(),
        None => text,
    })
}

/// Parses one file; YAML that holds no Kubernetes-looking document is ignored.
fn parse_file(text: &str, shown: &str, kind: &FileKind) -> Result<Vec<Value>, RenderError> {
    if *kind == FileKind::Json {
        return Ok(manifest::parse_json(text, shown)?);
    }
    let docs = match manifest::parse_yaml_documents(text, shown) {
        Ok(docs) => docs,
        Err(err) if text.contains("apiVersion") || text.contains("kind") => return Err(err.into()),
        Err(err) => {
            tracing::debug!(file = shown, error = %err, "ignoring unparsable non-manifest yaml");
            return Ok(Vec::new());
        }
    };
    if !docs.iter().any(manifest::looks_like_object) {
        if !docs.is_empty() {
            tracing::debug!(file = shown, "ignoring yaml without kubernetes objects");
        }
        return Ok(Vec::new());
    }
    Ok(manifest::objects_from_documents(docs, shown)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn non_manifest_yaml_is_ignored() {
        assert!(
            parse_file("replicas: 3\nimage: x\n", "values.yaml", &FileKind::Yaml)
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_file("a: [b\n", "broken-values.yaml", &FileKind::Yaml)
                .unwrap()
                .is_empty()
        );
        let err = parse_file("apiVersion: v1\nkind: [\n", "bad.yaml", &FileKind::Yaml).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }

    #[test]
    fn binary_and_large_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("b.yaml");
        std::fs::write(&bin, b"apiVersion: v1\0\x01\x02").unwrap();
        assert!(matches!(
            read_text(&bin, "b.yaml", 1000),
            Err(RenderError::BinaryFile(_))
        ));
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'a'; 2000]).unwrap();
        assert!(matches!(
            read_text(&big, "big.yaml", 1000),
            Err(RenderError::FileTooLarge { .. })
        ));
    }
}
