//! Blocking local reads of a mirror with gix: finding a commit by full or abbreviated
//! SHA, and walking its tree to materialise a checkout, list directories, collect files
//! matching a glob, or diff two commits. Callers run these in `spawn_blocking`.
//!
//! Every tree entry name is checked before use (no `..`, `.`, `/`, NUL or `.git`), so a
//! crafted tree cannot write outside the checkout. Symlinks are created as symlinks with
//! their target untouched; the renderers enforce confinement when they read through them.
//! Submodule entries (gitlinks) are skipped by checkout and listing.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use gix::hash::ObjectId;
use gix::objs::tree::EntryMode;

use super::big_trees::{self, BigTrees, TreeIndex};
use super::error::GitError;

/// Most tree entries one walk visits.
const MAX_ENTRIES: usize = 2_000_000;
/// Deepest directory nesting one walk follows.
const MAX_DEPTH: usize = 256;

/// The outcome of looking a SHA up in the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The commit (tags peeled).
    Found(ObjectId),
    /// No object has this id or prefix.
    Missing,
    /// More than one object has this prefix.
    Ambiguous,
}

/// Called by [`walk`] with each entry's slash-separated path.
type Visitor<'a> = dyn FnMut(&[u8], &Entry) -> Result<(), GitError> + 'a;

/// A pair of trees (either side may be absent) still to compare at `prefix`.
struct DiffItem {
    prefix: Vec<u8>,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    depth: usize,
}

/// One entry of a tree, owned.
struct Entry {
    name: Vec<u8>,
    mode: EntryMode,
    id: ObjectId,
}

/// Finds the commit a full or abbreviated (≥ 4 hex digits) SHA names.
pub(crate) fn find_commit(
    repo: &gix::Repository,
    url: &str,
    sha: &str,
) -> Result<Lookup, GitError> {
    let id = if sha.len() == 40 {
        match ObjectId::from_hex(sha.as_bytes()) {
            Ok(id) => id,
            Err(_) => return Ok(Lookup::Missing),
        }
    } else {
        let Ok(prefix) = gix::hash::Prefix::from_hex(sha) else {
            return Ok(Lookup::Missing);
        };
        match repo.objects.lookup_prefix(prefix, None) {
            Ok(None) => return Ok(Lookup::Missing),
            Ok(Some(Err(()))) => return Ok(Lookup::Ambiguous),
            Ok(Some(Ok(id))) => id,
            Err(source) => {
                return Err(GitError::ReadObject {
                    url: url.to_string(),
                    id: sha.to_string(),
                    source,
                });
            }
        }
    };
    let object = match repo.try_find_object(id) {
        Ok(Some(object)) => object,
        Ok(None) => return Ok(Lookup::Missing),
        Err(source) => return Err(read_error(url, id, source)),
    };
    match object.kind {
        gix::objs::Kind::Commit => Ok(Lookup::Found(id)),
        gix::objs::Kind::Tag => {
            let commit = object
                .peel_to_commit()
                .map_err(|source| read_error(url, id, source))?;
            Ok(Lookup::Found(commit.id))
        }
        _ => Err(GitError::NotACommit {
            revision: sha.to_string(),
            url: url.to_string(),
        }),
    }
}

/// Whether every branch and tag tip of the mirror is present (a cheap check for
/// deleted packs or loose objects).
pub(crate) fn ref_tips_present(repo: &gix::Repository, url: &str) -> Result<bool, GitError> {
    let platform = repo.references().map_err(|source| GitError::OpenMirror {
        url: url.to_string(),
        source,
    })?;
    let refs = platform.all().map_err(|source| GitError::OpenMirror {
        url: url.to_string(),
        source,
    })?;
    for reference in refs.take(MAX_ENTRIES) {
        let Ok(reference) = reference else {
            return Ok(false);
        };
        let Some(id) = reference.target().try_id().map(ToOwned::to_owned) else {
            continue;
        };
        match repo.try_find_object(id) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Writes the tree of `commit` into `dest` (created if missing, emptied first).
pub(crate) fn checkout(
    repo: &gix::Repository,
    url: &str,
    commit: ObjectId,
    dest: &Path,
) -> Result<(), GitError> {
    clear_dir(dest)?;
    let root = commit_tree(repo, url, commit)?;
    write_tree(repo, url, root, dest, 0).map(|_| ())
}

/// Writes only the directory `subpath` of `commit`'s tree into `dest` (at `subpath`
/// under it, created if missing, emptied first). Returns whether that directory stands
/// on its own: it exists, and nothing in it can reach outside (no symlinks, no Jsonnet,
/// whose imports may). Otherwise the caller needs the whole tree.
pub(crate) fn checkout_subtree(
    repo: &gix::Repository,
    url: &str,
    commit: ObjectId,
    subpath: &str,
    dest: &Path,
    big: &BigTrees,
) -> Result<bool, GitError> {
    clear_dir(dest)?;
    let mut tree = commit_tree(repo, url, commit)?;
    let mut dir = dest.to_path_buf();
    for part in subpath.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if check_name(url, &dir, part.as_bytes()).is_err() {
            // `..` and the like: the renderer judges such a path on the whole tree.
            return Ok(false);
        }
        match child(repo, url, tree, part.as_bytes(), big)? {
            Some((mode, id)) if mode.is_tree() => tree = id,
            _ => return Ok(false),
        }
        dir = dir.join(part);
    }
    std::fs::create_dir_all(&dir).map_err(|source| write_error(&dir, source))?;
    write_tree(repo, url, tree, &dir, 0)
}

/// The entry `name` of tree `id`, through the index of big trees.
fn child(
    repo: &gix::Repository,
    url: &str,
    id: ObjectId,
    name: &[u8],
    big: &BigTrees,
) -> Result<Option<(EntryMode, ObjectId)>, GitError> {
    if let Some(index) = big.get(&id) {
        return Ok(index.get(name).copied());
    }
    let entries = read_tree(repo, url, id)?;
    if entries.len() < big_trees::MIN_ENTRIES {
        return Ok(entries
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| (e.mode, e.id)));
    }
    let index: TreeIndex = entries
        .into_iter()
        .map(|e| (e.name, (e.mode, e.id)))
        .collect();
    let found = index.get(name).copied();
    big.put(id, std::sync::Arc::new(index));
    Ok(found)
}

/// Writes the entries of `tree` into the existing directory `dest`; returns whether no
/// entry could reach outside it (see [`checkout_subtree`]).
fn write_tree(
    repo: &gix::Repository,
    url: &str,
    tree: ObjectId,
    dest: &Path,
    depth: usize,
) -> Result<bool, GitError> {
    let mut self_contained = true;
    let mut stack: Vec<(PathBuf, ObjectId, usize)> = vec![(dest.to_path_buf(), tree, depth)];
    let mut visited = 0usize;
    while let Some((dir, tree, depth)) = stack.pop() {
        for entry in read_tree(repo, url, tree)? {
            visited += 1;
            if visited > MAX_ENTRIES || depth >= MAX_DEPTH {
                return Err(too_large(url, visited));
            }
            check_name(url, &dir, &entry.name)?;
            let path = dir.join(OsStr::from_bytes(&entry.name));
            if entry.mode.is_tree() {
                std::fs::create_dir(&path).map_err(|source| write_error(&path, source))?;
                stack.push((path, entry.id, depth + 1));
            } else if entry.mode.is_link() {
                self_contained = false;
                let target = read_blob(repo, url, entry.id)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|source| write_error(&path, source))?;
            } else if entry.mode.is_blob() {
                if entry.name.ends_with(b".jsonnet") || entry.name.ends_with(b".libsonnet") {
                    self_contained = false;
                }
                write_blob(repo, url, &entry, &path)?;
            }
        }
    }
    Ok(self_contained)
}

/// Writes one blob entry as a new file with its mode.
fn write_blob(
    repo: &gix::Repository,
    url: &str,
    entry: &Entry,
    path: &Path,
) -> Result<(), GitError> {
    let data = read_blob(repo, url, entry.id)?;
    let mode = if entry.mode.is_executable() {
        0o755
    } else {
        0o644
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| write_error(path, source))?;
    file.write_all(&data)
        .map_err(|source| write_error(path, source))
}

/// Directories of the tree of `commit`, relative, sorted, without the root.
pub(crate) fn list_directories(
    repo: &gix::Repository,
    url: &str,
    commit: ObjectId,
) -> Result<Vec<String>, GitError> {
    let mut out = Vec::new();
    walk(repo, url, commit, &mut |path, entry| {
        if entry.mode.is_tree() {
            out.push(String::from_utf8_lossy(path).into_owned());
        }
        Ok(())
    })?;
    out.sort();
    Ok(out)
}

/// Files of the tree of `commit` whose path matches `matcher`, with contents, at most
/// `limit` bytes in total. Symlinks and submodules are not files here.
pub(crate) fn get_files(
    repo: &gix::Repository,
    url: &str,
    commit: ObjectId,
    glob: &str,
    matcher: &globset::GlobMatcher,
    limit: u64,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let mut out = Vec::new();
    let mut total = 0u64;
    walk(repo, url, commit, &mut |path, entry| {
        if !entry.mode.is_blob() {
            return Ok(());
        }
        let path = String::from_utf8_lossy(path).into_owned();
        if !matcher.is_match(&path) {
            return Ok(());
        }
        let data = read_blob(repo, url, entry.id)?;
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(GitError::FilesTooLarge {
                glob: glob.to_string(),
                url: url.to_string(),
                limit,
            });
        }
        out.push((path, data));
        Ok(())
    })?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Paths (files, symlinks, submodules) that differ between the trees of two commits:
/// added, removed, modified or changed mode, like `git diff --name-only`.
pub(crate) fn changed_paths(
    repo: &gix::Repository,
    url: &str,
    from: ObjectId,
    to: ObjectId,
) -> Result<Vec<String>, GitError> {
    let from_tree = commit_tree(repo, url, from)?;
    let to_tree = commit_tree(repo, url, to)?;
    let mut changed = BTreeSet::new();
    let mut stack = vec![DiffItem {
        prefix: Vec::new(),
        old: Some(from_tree),
        new: Some(to_tree),
        depth: 0,
    }];
    let mut visited = 0usize;
    while let Some(DiffItem {
        prefix,
        old,
        new,
        depth,
    }) = stack.pop()
    {
        if old == new {
            continue;
        }
        let old_entries = entries_by_name(repo, url, old)?;
        let new_entries = entries_by_name(repo, url, new)?;
        let names: BTreeSet<&Vec<u8>> = old_entries.keys().chain(new_entries.keys()).collect();
        for name in names {
            visited += 1;
            if visited > MAX_ENTRIES || depth >= MAX_DEPTH {
                return Err(too_large(url, visited));
            }
            let path = join(&prefix, name);
            let a = old_entries.get(name);
            let b = new_entries.get(name);
            if a == b {
                continue;
            }
            let tree_of = |e: Option<&(EntryMode, ObjectId)>| {
                e.filter(|(mode, _)| mode.is_tree()).map(|(_, id)| *id)
            };
            let (old_tree, new_tree) = (tree_of(a), tree_of(b));
            if old_tree.is_some() || new_tree.is_some() {
                stack.push(DiffItem {
                    prefix: path.clone(),
                    old: old_tree,
                    new: new_tree,
                    depth: depth + 1,
                });
            }
            let is_leaf = |e: Option<&(EntryMode, ObjectId)>| e.is_some_and(|(m, _)| !m.is_tree());
            if is_leaf(a) || is_leaf(b) {
                changed.insert(String::from_utf8_lossy(&path).into_owned());
            }
        }
    }
    Ok(changed.into_iter().collect())
}

/// Visits every entry under the tree of `commit` with its slash-separated path.
fn walk(
    repo: &gix::Repository,
    url: &str,
    commit: ObjectId,
    visit: &mut Visitor<'_>,
) -> Result<(), GitError> {
    let root = commit_tree(repo, url, commit)?;
    let mut stack: Vec<(Vec<u8>, ObjectId, usize)> = vec![(Vec::new(), root, 0)];
    let mut visited = 0usize;
    while let Some((prefix, tree, depth)) = stack.pop() {
        for entry in read_tree(repo, url, tree)? {
            visited += 1;
            if visited > MAX_ENTRIES || depth >= MAX_DEPTH {
                return Err(too_large(url, visited));
            }
            check_name(url, Path::new(OsStr::from_bytes(&prefix)), &entry.name)?;
            let path = join(&prefix, &entry.name);
            visit(&path, &entry)?;
            if entry.mode.is_tree() {
                stack.push((path, entry.id, depth + 1));
            }
        }
    }
    Ok(())
}

/// The root tree of a commit.
fn commit_tree(repo: &gix::Repository, url: &str, commit: ObjectId) -> Result<ObjectId, GitError> {
    let object = find(repo, url, commit, gix::objs::Kind::Commit)?;
    let commit = object.into_commit();
    commit
        .tree_id()
        .map(|id| id.detach())
        .map_err(|source| read_error(url, commit.id, source))
}

/// The entries of a tree.
fn read_tree(repo: &gix::Repository, url: &str, id: ObjectId) -> Result<Vec<Entry>, GitError> {
    let object = find(repo, url, id, gix::objs::Kind::Tree)?;
    let tree = object.into_tree();
    let decoded = tree
        .decode()
        .map_err(|source| read_error(url, id, source))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| Entry {
            name: e.filename.to_vec(),
            mode: e.mode,
            id: e.oid.to_owned(),
        })
        .collect())
}

/// A tree's entries by name (empty for `None`).
fn entries_by_name(
    repo: &gix::Repository,
    url: &str,
    id: Option<ObjectId>,
) -> Result<BTreeMap<Vec<u8>, (EntryMode, ObjectId)>, GitError> {
    let Some(id) = id else {
        return Ok(BTreeMap::new());
    };
    Ok(read_tree(repo, url, id)?
        .into_iter()
        .map(|e| (e.name, (e.mode, e.id)))
        .collect())
}

/// The contents of a blob.
fn read_blob(repo: &gix::Repository, url: &str, id: ObjectId) -> Result<Vec<u8>, GitError> {
    let object = find(repo, url, id, gix::objs::Kind::Blob)?;
    Ok(object.detach().data)
}

/// An object of the expected kind; a missing object or a wrong kind means the mirror
/// is damaged.
fn find<'r>(
    repo: &'r gix::Repository,
    url: &str,
    id: ObjectId,
    kind: gix::objs::Kind,
) -> Result<gix::Object<'r>, GitError> {
    match repo.try_find_object(id) {
        Ok(Some(object)) if object.kind == kind => Ok(object),
        Ok(_) => Err(GitError::DamagedObject {
            url: url.to_string(),
            id: id.to_string(),
        }),
        Err(source) => Err(read_error(url, id, source)),
    }
}

/// Rejects entry names that could escape or corrupt a checkout.
fn check_name(url: &str, dir: &Path, name: &[u8]) -> Result<(), GitError> {
    let bad = name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&b'\0')
        || name.eq_ignore_ascii_case(b".git");
    if bad {
        return Err(GitError::UnsafePath {
            path: dir.join(OsStr::from_bytes(name)).display().to_string(),
            url: url.to_string(),
        });
    }
    Ok(())
}

/// Removes everything inside `dir`, creating it if missing.
fn clear_dir(dir: &Path) -> Result<(), GitError> {
    std::fs::create_dir_all(dir).map_err(|source| write_error(dir, source))?;
    let entries = std::fs::read_dir(dir).map_err(|source| write_error(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| write_error(dir, source))?;
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(|source| write_error(&path, source))?
            .is_dir();
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|source| write_error(&path, source))?;
    }
    Ok(())
}

/// `prefix/name` (or `name` at the root).
fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(prefix.len() + name.len() + 1);
    if !prefix.is_empty() {
        path.extend_from_slice(prefix);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn read_error(url: &str, id: ObjectId, source: gix::Error) -> GitError {
    GitError::ReadObject {
        url: url.to_string(),
        id: id.to_string(),
        source,
    }
}

fn write_error(path: &Path, source: std::io::Error) -> GitError {
    GitError::WriteCheckout {
        path: path.display().to_string(),
        source,
    }
}

fn too_large(url: &str, visited: usize) -> GitError {
    GitError::TreeTooLarge {
        url: url.to_string(),
        limit: if visited > MAX_ENTRIES {
            MAX_ENTRIES
        } else {
            MAX_DEPTH
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_rejected() {
        for bad in [&b".."[..], b".", b"", b"a/b", b".GIT", b"a\0"] {
            assert!(check_name("u", Path::new("d"), bad).is_err(), "{bad:?}");
        }
        for good in [&b"a"[..], b"..a", b".gitignore", b"x.git"] {
            assert!(check_name("u", Path::new("d"), good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn join_paths() {
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
    }
}
