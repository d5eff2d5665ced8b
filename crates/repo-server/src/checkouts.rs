//! Shared checkouts: the tree of a commit is materialised once and shared read-only by
//! every render of that commit (most renders of a fleet hit a few commits of a few
//! repositories); renderers that write into the checkout (Kustomize edits, plugins) get
//! a private copy. A bounded number of checkouts is kept, least recently used evicted;
//! an evicted checkout is deleted when its last user is done.

use crate::git::{GitError, GitStore, RepoAccess};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// Errors preparing a checkout.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Materialising the commit failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Creating or copying a scratch directory failed.
    #[error("preparing a scratch checkout failed")]
    Scratch(#[source] std::io::Error),
}

/// A checkout in use; the directory lives while any handle does.
#[derive(Debug, Clone)]
pub struct Checkout {
    dir: Arc<TempDir>,
    /// For a checkout of one directory: whether it stands on its own (see
    /// [`GitStore::checkout_subtree`]); always true for a whole tree.
    self_contained: bool,
}

impl Checkout {
    /// The checkout's root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Whether renders may use it without the rest of the tree.
    pub fn is_self_contained(&self) -> bool {
        self.self_contained
    }
}

type Slot = Arc<tokio::sync::OnceCell<Checkout>>;
/// Repository URL, commit, and the directory checked out ("" for the whole tree).
type CommitKey = (String, String, String);
/// Slots by commit, and their use order (least recent first).
type Slots = (HashMap<CommitKey, Slot>, Vec<CommitKey>);

/// The shared checkouts of one repo-server.
#[derive(Debug)]
pub struct CheckoutCache {
    dir: PathBuf,
    capacity: usize,
    slots: Mutex<Slots>,
}

impl CheckoutCache {
    /// Keeps at most `capacity` commits checked out under `dir`.
    pub fn new(dir: PathBuf, capacity: usize) -> Self {
        Self {
            dir,
            capacity: capacity.max(1),
            slots: Mutex::new((HashMap::new(), Vec::new())),
        }
    }

    /// The shared, read-only checkout of `sha` (materialised once, concurrently safe).
    pub async fn shared(
        &self,
        git: &GitStore,
        access: &RepoAccess,
        sha: &str,
    ) -> Result<Checkout, CheckoutError> {
        self.slot(git, access, sha, "").await
    }

    /// The shared checkout of only the directory `subpath` of `sha`: a render of one
    /// plain directory of a monorepo writes a few files, not the whole tree, for each
    /// new commit. Check [`Checkout::is_self_contained`] before rendering from it.
    pub async fn subtree(
        &self,
        git: &GitStore,
        access: &RepoAccess,
        sha: &str,
        subpath: &str,
    ) -> Result<Checkout, CheckoutError> {
        self.slot(git, access, sha, subpath.trim_matches('/')).await
    }

    async fn slot(
        &self,
        git: &GitStore,
        access: &RepoAccess,
        sha: &str,
        subpath: &str,
    ) -> Result<Checkout, CheckoutError> {
        let key = (access.url.clone(), sha.to_owned(), subpath.to_owned());
        let slot = {
            let mut guard = self.slots.lock();
            let (map, order) = &mut *guard;
            order.retain(|k| k != &key);
            order.push(key.clone());
            let slot = Arc::clone(map.entry(key.clone()).or_default());
            while order.len() > self.capacity {
                let evicted = order.remove(0);
                map.remove(&evicted);
            }
            slot
        };
        let checkout = slot
            .get_or_try_init(|| async {
                let dir = tempfile::Builder::new()
                    .prefix("tree-")
                    .tempdir_in(&self.dir)
                    .map_err(CheckoutError::Scratch)?;
                let self_contained = if subpath.is_empty() {
                    git.checkout(access, sha, dir.path()).await?;
                    true
                } else {
                    git.checkout_subtree(access, sha, subpath, dir.path())
                        .await?
                };
                Ok::<_, CheckoutError>(Checkout {
                    dir: Arc::new(dir),
                    self_contained,
                })
            })
            .await;
        if checkout.is_err() {
            // Do not keep a failed slot: the next request tries again.
            let mut guard = self.slots.lock();
            guard.0.remove(&key);
            guard.1.retain(|k| k != &key);
        }
        checkout.cloned()
    }

    /// A private, writable copy of a shared checkout.
    pub async fn private_copy(&self, shared: &Checkout) -> Result<Checkout, CheckoutError> {
        let dir = tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&self.dir)
            .map_err(CheckoutError::Scratch)?;
        let (from, to) = (shared.path().to_path_buf(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || copy_tree(&from, &to))
            .await
            .map_err(|e| CheckoutError::Scratch(std::io::Error::other(e)))?
            .map_err(CheckoutError::Scratch)?;
        Ok(Checkout {
            dir: Arc::new(dir),
            self_contained: shared.self_contained,
        })
    }
}

/// Copies a directory tree, keeping symlinks as symlinks (renderers check where they
/// point) and file modes.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
