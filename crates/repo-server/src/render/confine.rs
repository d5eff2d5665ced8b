//! Confinement to the checkout root: resolving the app path and repository-relative file
//! references (Argo CD's rules: relative to a base directory, absolute paths relative to the
//! repository root, symlinks resolved, the result inside the root), rejecting remote URLs,
//! and scanning a checkout for symlinks that point outside it.

use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

/// Upper bound on directory entries visited by one symlink scan.
const MAX_SCAN_ENTRIES: usize = 2_000_000;

/// Why a path was refused or could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The checkout root cannot be resolved.
    #[error("checkout root {path}: {source}", path = .path.display())]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The app path is absolute.
    #[error("app path {0:?} is absolute; it must be relative to the repository root")]
    AbsoluteAppPath(String),
    /// The app path (lexically or through a symlink) leaves the repository.
    #[error("app path {0:?} resolves outside the repository")]
    AppPathOutside(String),
    /// The app path does not exist or is not a directory.
    #[error("app path {0:?} does not exist in the repository or is not a directory")]
    AppPathMissing(String),
    /// A referenced file or directory resolves outside the repository.
    #[error("{what} {reference:?} resolves outside the repository")]
    Outside {
        /// What the reference is (value file, jsonnet library, ...).
        what: &'static str,
        /// The reference as written.
        reference: String,
    },
    /// A symlink in the checkout points outside it.
    #[error("repository contains a symlink pointing outside the repository: {0}")]
    SymlinkOutside(String),
    /// A scan of the checkout failed or was too large.
    #[error("scan repository: {0}")]
    Scan(String),
}

/// The canonical form of the checkout root.
pub fn canonical_root(root: &Path) -> Result<PathBuf, ConfineError> {
    root.canonicalize().map_err(|source| ConfineError::Root {
        path: root.to_path_buf(),
        source,
    })
}

/// Lexically normalises `path` (removes `.`, applies `..`); `None` if `..` climbs above the
/// first component of an absolute path.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped = out.pop();
                if !popped || out.as_os_str().is_empty() {
                    return None;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// Whether `path` is `root` or below it (both already absolute and normalised).
pub fn is_inside(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

/// Resolves the application directory `path` under the canonical `root`: not absolute, no
/// escape through `..` or symlinks, must be an existing directory. Returns its canonical path.
pub fn resolve_app_dir(root: &Path, path: &str) -> Result<PathBuf, ConfineError> {
    let trimmed = path.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Ok(root.to_path_buf());
    }
    if Path::new(trimmed).is_absolute() {
        return Err(ConfineError::AbsoluteAppPath(path.to_string()));
    }
    let joined = normalize(&root.join(trimmed)).filter(|p| is_inside(p, root));
    let Some(joined) = joined else {
        return Err(ConfineError::AppPathOutside(path.to_string()));
    };
    let canonical = match joined.canonicalize() {
        Ok(c) => c,
        Err(_) => return Err(ConfineError::AppPathMissing(path.to_string())),
    };
    if !is_inside(&canonical, root) {
        return Err(ConfineError::AppPathOutside(path.to_string()));
    }
    if !canonical.is_dir() {
        return Err(ConfineError::AppPathMissing(path.to_string()));
    }
    Ok(canonical)
}

/// Resolves a repository file reference the way Argo CD resolves value files: relative
/// references against `base`, absolute ones against the repository `root`. The lexical result
/// and, when it exists, its symlink-resolved form must stay inside `root`. Returns the path
/// (canonical when it exists) and whether it exists.
pub fn resolve_reference(
    root: &Path,
    base: &Path,
    reference: &str,
    what: &'static str,
) -> Result<(PathBuf, bool), ConfineError> {
    let outside = || ConfineError::Outside {
        what,
        reference: reference.to_string(),
    };
    let rel = Path::new(reference);
    let joined = if rel.is_absolute() {
        let stripped: PathBuf = rel
            .components()
            .filter(|c| !matches!(c, Component::RootDir))
            .collect();
        root.join(stripped)
    } else {
        base.join(rel)
    };
    let lexical = normalize(&joined)
        .filter(|p| is_inside(p, root))
        .ok_or_else(outside)?;
    match lexical.canonicalize() {
        Ok(canonical) if is_inside(&canonical, root) => Ok((canonical, true)),
        Ok(_) => Err(outside()),
        Err(_) => {
            // A dangling symlink must not point outside either.
            if std::fs::symlink_metadata(&lexical).is_ok() {
                check_link(root, &lexical).map_err(|_| outside())?;
            }
            Ok((lexical, false))
        }
    }
}

/// Whether `reference` is a URL with a scheme (`https://`, `s3://`, `git@host:...`).
pub fn is_url(reference: &str) -> bool {
    if reference.starts_with("git@") {
        return true;
    }
    match reference.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Checks one symlink: its target (resolved if possible, lexically otherwise) must be inside
/// `root`.
fn check_link(root: &Path, link: &Path) -> Result<(), ()> {
    if let Ok(canonical) = link.canonicalize() {
        return if is_inside(&canonical, root) {
            Ok(())
        } else {
            Err(())
        };
    }
    let target = std::fs::read_link(link).map_err(|_| ())?;
    let parent = link.parent().unwrap_or(root);
    let joined = if target.is_absolute() {
        target
    } else {
        parent.join(target)
    };
    match normalize(&joined) {
        Some(p) if is_inside(&p, root) => Ok(()),
        _ => Err(()),
    }
}

/// Scans the whole checkout (except `.git`) for symlinks whose target is outside `root`, as
/// Argo CD does before running a tool over a repository. `root` must be canonical.
pub fn check_symlinks(root: &Path) -> Result<(), ConfineError> {
    let walker = WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git");
    for (count, entry) in walker.enumerate() {
        if count > MAX_SCAN_ENTRIES {
            return Err(ConfineError::Scan(format!(
                "more than {MAX_SCAN_ENTRIES} entries"
            )));
        }
        let entry = entry.map_err(|e| ConfineError::Scan(e.to_string()))?;
        if entry.path_is_symlink() && check_link(root, entry.path()).is_err() {
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            return Err(ConfineError::SymlinkOutside(rel.display().to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn normalize_applies_dots() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")).unwrap(),
            PathBuf::from("/a/c/d")
        );
        assert!(normalize(Path::new("/a/../..")).is_none());
    }

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("https://example.com/values.yaml"));
        assert!(is_url("s3://bucket/x"));
        assert!(is_url("git@github.com:a/b"));
        assert!(!is_url("values/prod.yaml"));
        assert!(!is_url("/abs/file.yaml"));
    }

    #[test]
    fn app_dir_is_confined() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("apps/a")).unwrap();
        let root = canonical_root(&root).unwrap();
        assert_eq!(
            resolve_app_dir(&root, "apps/a").unwrap(),
            root.join("apps/a")
        );
        assert_eq!(resolve_app_dir(&root, "").unwrap(), root);
        assert!(matches!(
            resolve_app_dir(&root, "../.."),
            Err(ConfineError::AppPathOutside(_))
        ));
        assert!(matches!(
            resolve_app_dir(&root, "/etc"),
            Err(ConfineError::AbsoluteAppPath(_))
        ));
        assert!(matches!(
            resolve_app_dir(&root, "nope"),
            Err(ConfineError::AppPathMissing(_))
        ));
        std::os::unix::fs::symlink(tmp.path(), root.join("out")).unwrap();
        assert!(matches!(
            resolve_app_dir(&root, "out"),
            Err(ConfineError::AppPathOutside(_))
        ));
    }

    #[test]
    fn references_resolve_like_argo_cd() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical_root(tmp.path()).unwrap();
        std::fs::create_dir_all(root.join("chart")).unwrap();
        std::fs::write(root.join("v.yaml"), "a: 1").unwrap();
        let base = root.join("chart");
        assert_eq!(
            resolve_reference(&root, &base, "../v.yaml", "f").unwrap(),
            (root.join("v.yaml"), true)
        );
        assert_eq!(
            resolve_reference(&root, &base, "/v.yaml", "f").unwrap(),
            (root.join("v.yaml"), true)
        );
        let (mapped, exists) = resolve_reference(&root, &base, "/etc/passwd", "f").unwrap();
        assert!(!exists);
        assert_eq!(mapped, root.join("etc/passwd"));
        assert!(resolve_reference(&root, &base, "../../../../etc/passwd", "f").is_err());
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        assert!(resolve_reference(&root, &base, "../link", "f").is_err());
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).unwrap();
        assert!(resolve_reference(&root, &base, "../dangling", "f").is_err());
    }

    #[test]
    fn symlink_scan_finds_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical_root(tmp.path()).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/x.yaml"), "").unwrap();
        std::os::unix::fs::symlink("../x.yaml", root.join("a/b/in")).unwrap();
        check_symlinks(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/b/out")).unwrap();
        let err = check_symlinks(&root).unwrap_err();
        assert!(err.to_string().contains("a/b/out"), "{err}");
    }
}
