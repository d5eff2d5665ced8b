//! The repo-server's Git layer: one bare mirror per repository URL, revision resolution
//! (`ls-remote` semantics, cached briefly), and local reads of commits (checkout,
//! directory listing, files by glob, changed paths) with gix.
//!
//! Network operations (ls-remote, fetch) shell out to the `git` CLI ([`cli`] explains
//! why); local reads use gix in `spawn_blocking`. Concurrent requests for one repository
//! share one fetch and one ls-remote; different repositories never wait on each other.
//! A damaged mirror is detected (gix open/read errors, missing ref tips, `git fsck` after
//! a failed fetch) and re-cloned once per request.
//!
//! Mirrors are keyed by the normalised URL only, as in Argo CD: a commit already in the
//! mirror can be read by any request for that URL, whichever credentials it carries.

mod big_trees;
mod cli;
mod error;
mod mirror;
mod refs;
mod remote_url;
mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{GitError, GitStep, RemoteFailure, classify_stderr};
pub use refs::{RemoteRefs, is_full_sha, is_short_sha};
pub use remote_url::{mirror_dir_name, normalize as normalize_url, redact_url};

use mirror::Mirror;

/// Name of the directory under the mirror root holding the private git home, the
/// askpass helper, SSH key files and clones in progress.
const STATE_DIR: &str = ".keelson-git";

/// How to reach one repository: URL and credentials, as taken from a repository or
/// repo-creds Secret.
#[derive(Clone, Default)]
pub struct RepoAccess {
    /// Clone URL: `https://`, `ssh://`, scp-like `git@host:path`, or `file://`.
    pub url: String,
    /// HTTPS user name (defaults to `git` when only a password/token is given).
    pub username: Option<String>,
    /// HTTPS password or token.
    pub password: Option<String>,
    /// SSH private key (PEM/OpenSSH text).
    pub ssh_private_key: Option<String>,
    /// Skip TLS verification (HTTPS) and host-key checking (SSH).
    pub insecure: bool,
    /// HTTP(S) proxy URL.
    pub proxy: Option<String>,
}

impl RepoAccess {
    /// Access to a public (or `file://`) repository without credentials.
    pub fn public(url: impl Into<String>) -> RepoAccess {
        RepoAccess {
            url: url.into(),
            ..RepoAccess::default()
        }
    }
}

impl std::fmt::Debug for RepoAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoAccess")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "ssh_private_key",
                &self.ssh_private_key.as_ref().map(|_| "***"),
            )
            .field("insecure", &self.insecure)
            .field("proxy", &self.proxy.as_deref().map(redact_url))
            .finish()
    }
}

/// Settings of the Git layer.
#[derive(Debug, Clone)]
pub struct GitConfig {
    /// Directory holding the mirrors (one sub-directory per normalised URL).
    pub root: PathBuf,
    /// Time limit of one clone or fetch.
    pub fetch_timeout: Duration,
    /// Time limit of one ls-remote.
    pub ls_remote_timeout: Duration,
    /// How long resolved refs are reused; zero disables the cache (concurrent requests
    /// still share one ls-remote).
    pub revision_cache_ttl: Duration,
    /// The git binary.
    pub git_binary: PathBuf,
    /// Known-hosts file for SSH when `insecure` is false (else OpenSSH's defaults).
    pub ssh_known_hosts: Option<PathBuf>,
    /// Most bytes `get_files` returns in total.
    pub max_files_bytes: u64,
}

impl GitConfig {
    /// Defaults (90 s fetch, 20 s ls-remote, 3 min revision cache, `git` on PATH,
    /// 64 MiB for `get_files`) with mirrors under `root`.
    pub fn new(root: impl Into<PathBuf>) -> GitConfig {
        GitConfig {
            root: root.into(),
            fetch_timeout: Duration::from_secs(90),
            ls_remote_timeout: Duration::from_secs(20),
            revision_cache_ttl: Duration::from_secs(180),
            git_binary: PathBuf::from("git"),
            ssh_known_hosts: None,
            max_files_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for GitConfig {
    /// The defaults of [`GitConfig::new`] with mirrors under
    /// `$TMPDIR/keelson-repo-server-mirrors`.
    fn default() -> GitConfig {
        GitConfig::new(std::env::temp_dir().join("keelson-repo-server-mirrors"))
    }
}

/// The kind of remote request reported to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitRequestKind {
    /// `git ls-remote`.
    LsRemote,
    /// `git fetch` (including the first fetch of a new mirror).
    Fetch,
}

impl GitRequestKind {
    /// The `request_type` label value Argo CD uses.
    pub fn as_str(self) -> &'static str {
        match self {
            GitRequestKind::LsRemote => "ls-remote",
            GitRequestKind::Fetch => "fetch",
        }
    }
}

/// Called after every ls-remote and fetch with the kind, the redacted repository URL,
/// the duration and whether it failed.
pub type GitObserver = Arc<dyn Fn(GitRequestKind, &str, Duration, bool) + Send + Sync>;

/// The Git layer: mirrors on disk plus the in-memory per-repository state. Cheap to clone.
#[derive(Clone)]
pub struct GitStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: GitConfig,
    /// Indexes of big trees (monorepo roots) for finding one directory.
    big_trees: Arc<big_trees::BigTrees>,
    cli: cli::GitCli,
    tmp_dir: PathBuf,
    mirrors: parking_lot::Mutex<HashMap<String, Arc<Mirror>>>,
    observer: parking_lot::RwLock<Option<GitObserver>>,
}

impl std::fmt::Debug for GitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GitStore {
    /// Prepares the mirror root (created if missing) and the private git state under it.
    pub fn new(config: GitConfig) -> Result<Self, GitError> {
        std::fs::create_dir_all(&config.root).map_err(|source| GitError::PrepareRoot {
            path: config.root.display().to_string(),
            source,
        })?;
        let state = config.root.join(STATE_DIR);
        let cli = cli::GitCli::new(
            config.git_binary.clone(),
            &state,
            config.ssh_known_hosts.clone(),
        )?;
        let tmp_dir = state.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|source| GitError::PrepareRoot {
            path: tmp_dir.display().to_string(),
            source,
        })?;
        Ok(GitStore {
            inner: Arc::new(Inner {
                config,
                big_trees: Arc::default(),
                cli,
                tmp_dir,
                mirrors: parking_lot::Mutex::new(HashMap::new()),
                observer: parking_lot::RwLock::new(None),
            }),
        })
    }

    /// Installs the hook called on every ls-remote and fetch (for metrics).
    pub fn with_observer(self, observer: GitObserver) -> Self {
        *self.inner.observer.write() = Some(observer);
        self
    }

    /// The settings.
    pub fn config(&self) -> &GitConfig {
        &self.inner.config
    }

    /// The directory of the mirror of `url`.
    pub fn mirror_path(&self, url: &str) -> PathBuf {
        self.inner.config.root.join(mirror_dir_name(url))
    }

    /// Resolves a branch, tag, `HEAD`, `""` (= `HEAD`), a full SHA or a short SHA to a
    /// full commit SHA. Symbolic refs are resolved against the remote (ls-remote
    /// semantics, cached for `revision_cache_ttl`); SHAs (full or ≥ 4 hex digits) are
    /// looked up in the mirror, fetching if unknown.
    pub async fn resolve(&self, repo: &RepoAccess, revision: &str) -> Result<String, GitError> {
        self.resolve_within(repo, revision, self.inner.config.revision_cache_ttl, None)
            .await
    }

    /// Like [`GitStore::resolve`], but cached remote refs are reused only when they were
    /// listed at or after `listed_after`: another repo-server answered a refresh someone
    /// asked for at that time, and this one must not answer with refs older than that
    /// (an app would go back to the commit before the one it was just synced to).
    pub async fn resolve_listed_after(
        &self,
        repo: &RepoAccess,
        revision: &str,
        listed_after: Instant,
    ) -> Result<String, GitError> {
        let ttl = self.inner.config.revision_cache_ttl;
        self.resolve_within(repo, revision, ttl, Some(listed_after))
            .await
    }

    /// Like [`GitStore::resolve`], but branch and tag names are looked up in the remote
    /// as it is now, not in the revision cache: what a refresh someone asked for needs
    /// to see a commit pushed a moment ago. Concurrent callers still share one
    /// ls-remote that started after they asked.
    pub async fn resolve_latest(
        &self,
        repo: &RepoAccess,
        revision: &str,
    ) -> Result<String, GitError> {
        self.resolve_within(repo, revision, Duration::ZERO, None)
            .await
    }

    /// Resolves `revision`, reusing remote refs listed less than `ttl` ago (and not
    /// before `listed_after`).
    async fn resolve_within(
        &self,
        repo: &RepoAccess,
        revision: &str,
        ttl: Duration,
        listed_after: Option<Instant>,
    ) -> Result<String, GitError> {
        let revision = refs::effective_revision(revision);
        let mirror = self.mirror(repo);
        if is_full_sha(revision) {
            let id = self.ensure_commit(repo, &mirror, revision).await?;
            return Ok(id.to_string());
        }
        let remote = self.remote_refs(repo, &mirror, ttl, listed_after).await?;
        if let Some(sha) = remote.lookup(revision) {
            return Ok(sha.to_string());
        }
        if is_short_sha(revision) {
            let id = self.ensure_commit(repo, &mirror, revision).await?;
            return Ok(id.to_string());
        }
        Err(GitError::RevisionNotFound {
            revision: revision.to_string(),
            url: redact_url(&repo.url),
        })
    }

    /// Materialises the tree of commit `sha` into `dest` (created if missing; its
    /// previous contents are removed): regular files (with the executable bit),
    /// directories, and symlinks created as symlinks with their target untouched — the
    /// renderers check confinement. Submodules are skipped. A non-SHA revision is
    /// resolved first.
    pub async fn checkout(
        &self,
        repo: &RepoAccess,
        sha: &str,
        dest: &Path,
    ) -> Result<(), GitError> {
        let mirror = self.mirror(repo);
        let id = self.commit_id(repo, &mirror, sha).await?;
        let url = redact_url(&repo.url);
        let dest = dest.to_path_buf();
        self.read(repo, &mirror, move |r| tree::checkout(r, &url, id, &dest))
            .await
    }

    /// Materialises only the directory `subpath` of commit `sha` into `dest` (at
    /// `subpath` under it). Returns whether that directory stands on its own (it exists
    /// and holds no symlink or Jsonnet file that could reach outside it).
    pub async fn checkout_subtree(
        &self,
        repo: &RepoAccess,
        sha: &str,
        subpath: &str,
        dest: &Path,
    ) -> Result<bool, GitError> {
        let mirror = self.mirror(repo);
        let id = self.commit_id(repo, &mirror, sha).await?;
        let url = redact_url(&repo.url);
        let (subpath, dest) = (subpath.to_owned(), dest.to_path_buf());
        let big = self.inner.big_trees.clone();
        self.read(repo, &mirror, move |r| {
            tree::checkout_subtree(r, &url, id, &subpath, &dest, &big)
        })
        .await
    }

    /// Directories of the tree at `sha` (paths relative to the root, sorted, no trailing
    /// slash, root excluded).
    pub async fn list_directories(
        &self,
        repo: &RepoAccess,
        sha: &str,
    ) -> Result<Vec<String>, GitError> {
        let mirror = self.mirror(repo);
        let id = self.commit_id(repo, &mirror, sha).await?;
        let url = redact_url(&repo.url);
        self.read(repo, &mirror, move |r| tree::list_directories(r, &url, id))
            .await
    }

    /// Files at `sha` whose path matches `glob` (globset syntax; `*` stays within one
    /// directory, `**` crosses directories), with contents, sorted by path. Symlinks are
    /// not returned. Fails if the total exceeds `max_files_bytes`.
    pub async fn get_files(
        &self,
        repo: &RepoAccess,
        sha: &str,
        glob: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let matcher = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|source| GitError::InvalidGlob {
                glob: glob.to_string(),
                source,
            })?
            .compile_matcher();
        let mirror = self.mirror(repo);
        let id = self.commit_id(repo, &mirror, sha).await?;
        let url = redact_url(&repo.url);
        let glob = glob.to_string();
        let limit = self.inner.config.max_files_bytes;
        self.read(repo, &mirror, move |r| {
            tree::get_files(r, &url, id, &glob, &matcher, limit)
        })
        .await
    }

    /// Paths changed between two commits (added, removed, modified), sorted.
    pub async fn changed_paths(
        &self,
        repo: &RepoAccess,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, GitError> {
        let mirror = self.mirror(repo);
        let from = self.commit_id(repo, &mirror, from).await?;
        let to = self.commit_id(repo, &mirror, to).await?;
        let url = redact_url(&repo.url);
        self.read(repo, &mirror, move |r| {
            tree::changed_paths(r, &url, from, to)
        })
        .await
    }

    /// Checks the repository is reachable with its credentials (an uncached ls-remote).
    pub async fn test(&self, repo: &RepoAccess) -> Result<(), GitError> {
        self.ls_remote(repo).await.map(|_| ())
    }

    /// The commit a SHA (full or short) or, failing that, a symbolic revision names,
    /// present in the mirror.
    async fn commit_id(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        revision: &str,
    ) -> Result<gix::hash::ObjectId, GitError> {
        let revision = refs::effective_revision(revision);
        if is_full_sha(revision) {
            return self.ensure_commit(repo, mirror, revision).await;
        }
        let sha = self.resolve(repo, revision).await?;
        self.ensure_commit(repo, mirror, &sha).await
    }

    /// The per-repository state, created on first use.
    fn mirror(&self, repo: &RepoAccess) -> Arc<Mirror> {
        let key = mirror_dir_name(&repo.url);
        let mut mirrors = self.inner.mirrors.lock();
        mirrors
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Mirror::new(self.inner.config.root.join(&key), key)))
            .clone()
    }

    /// Reports one remote request to the observer.
    fn observe(&self, kind: GitRequestKind, repo: &RepoAccess, started: Instant, failed: bool) {
        let observer = self.inner.observer.read().clone();
        if let Some(observer) = observer {
            observer(kind, &redact_url(&repo.url), started.elapsed(), failed);
        }
    }
}
