//! Per-repository mirror state and its upkeep: the shared (single-flight) ls-remote
//! with its short-lived cache, the shared fetch that makes a commit present, cloning a
//! fresh mirror, and detecting and repairing a damaged one.
//!
//! Single flight: each mirror has one async lock for ls-remote and one for fetches. A
//! request records when it asked; once it holds the lock it reuses the outcome of any
//! attempt that *started after it asked* (success or remote failure) instead of
//! repeating it, so N concurrent requests cost one network round.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gix::hash::ObjectId;

use super::cli::Invocation;
use super::error::{GitError, GitStep};
use super::refs::{RemoteRefs, is_full_sha};
use super::remote_url::redact_url;
use super::tree::{self, Lookup};
use super::{GitRequestKind, GitStore, RepoAccess};

/// Refspecs a mirror keeps: every branch and tag, force-updated.
const REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// The in-memory state of one mirror.
pub(crate) struct Mirror {
    /// The bare repository directory.
    dir: PathBuf,
    /// Its name (hash of the normalised URL).
    key: String,
    /// Bumped whenever the directory is replaced by a fresh clone.
    generation: AtomicU64,
    /// The opened gix repository of the current generation.
    opened: parking_lot::Mutex<Option<(u64, gix::ThreadSafeRepository)>>,
    /// Single flight of fetches and clones.
    fetch: tokio::sync::Mutex<FetchState>,
    /// Single flight and cache of ls-remote.
    refs: tokio::sync::Mutex<Option<Attempt<Arc<RemoteRefs>>>>,
}

/// The last fetch of a mirror.
#[derive(Default)]
struct FetchState {
    last: Option<Attempt<()>>,
}

/// When a shared remote operation started and how it ended (failures kept only when
/// they can be handed to waiters).
struct Attempt<T> {
    started: Instant,
    outcome: Result<T, Option<GitError>>,
}

impl<T: Clone> Attempt<T> {
    /// The outcome for a request that asked at `requested`, if this attempt started
    /// after that (or is within `ttl` when it succeeded).
    fn reusable(&self, requested: Instant, ttl: Duration) -> Option<Result<T, GitError>> {
        let after_request = self.started >= requested;
        match &self.outcome {
            Ok(value) if after_request || self.started.elapsed() < ttl => Some(Ok(value.clone())),
            Err(Some(error)) if after_request => error.shareable().map(Err),
            _ => None,
        }
    }
}

impl Mirror {
    /// State for the mirror in `dir`.
    pub(crate) fn new(dir: PathBuf, key: String) -> Mirror {
        Mirror {
            dir,
            key,
            generation: AtomicU64::new(0),
            opened: parking_lot::Mutex::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            refs: tokio::sync::Mutex::new(None),
        }
    }

    /// The gix repository of the current generation, opened once and shared.
    fn open(&self, url: &str) -> Result<(u64, gix::Repository), GitError> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut opened = self.opened.lock();
        if let Some((g, repo)) = opened.as_ref().filter(|(g, _)| *g == generation) {
            return Ok((*g, repo.to_thread_local()));
        }
        let repo = gix::open_opts(&self.dir, gix::open::Options::isolated()).map_err(|source| {
            GitError::OpenMirror {
                url: url.to_string(),
                source,
            }
        })?;
        let shared = repo.into_sync();
        let local = shared.to_thread_local();
        *opened = Some((generation, shared));
        Ok((generation, local))
    }
}

impl GitStore {
    /// The remote's refs: listed less than `ttl` ago (and not before `listed_after`), or
    /// by one shared ls-remote that started after this call.
    pub(super) async fn remote_refs(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        ttl: Duration,
        listed_after: Option<Instant>,
    ) -> Result<Arc<RemoteRefs>, GitError> {
        let requested = Instant::now();
        let mut slot = mirror.refs.lock().await;
        if let Some(reused) = slot
            .as_ref()
            .filter(|a| listed_after.is_none_or(|floor| a.started >= floor))
            .and_then(|a| a.reusable(requested, ttl))
        {
            return reused;
        }
        let started = Instant::now();
        let result = self.ls_remote(repo).await.map(Arc::new);
        *slot = Some(Attempt {
            started,
            outcome: match &result {
                Ok(refs) => Ok(refs.clone()),
                Err(error) => Err(error.shareable()),
            },
        });
        result
    }

    /// One ls-remote, reported to the observer.
    pub(super) async fn ls_remote(&self, repo: &RepoAccess) -> Result<RemoteRefs, GitError> {
        let started = Instant::now();
        let invocation = Invocation {
            step: GitStep::LsRemote,
            args: vec!["ls-remote".into(), "--".into(), repo.url.clone().into()],
            git_dir: None,
            timeout: self.inner.config.ls_remote_timeout,
        };
        let result = self.inner.cli.run(repo, invocation).await;
        self.observe(GitRequestKind::LsRemote, repo, started, result.is_err());
        let stdout = result?;
        Ok(RemoteRefs::parse(&String::from_utf8_lossy(&stdout)))
    }

    /// Makes the commit `sha` (full, or ≥ 4 hex digits) present in the mirror, fetching
    /// (or cloning, or re-cloning a damaged mirror) at most once, and returns its id.
    pub(super) async fn ensure_commit(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        sha: &str,
    ) -> Result<ObjectId, GitError> {
        let sha = sha.to_ascii_lowercase();
        let requested = Instant::now();
        if let Ok(found) = self.lookup(repo, mirror, &sha).await
            && let Some(id) = settle(repo, &sha, found)?
        {
            return Ok(id);
        }
        let mut state = mirror.fetch.lock().await;
        // Another request fetched after we asked: share its failure, or its success.
        let fresh = match state
            .last
            .as_ref()
            .and_then(|a| a.reusable(requested, Duration::ZERO))
        {
            Some(Err(error)) => return Err(error),
            Some(Ok(())) => true,
            None => false,
        };
        let damaged = match self.lookup(repo, mirror, &sha).await {
            Ok(found) => match settle(repo, &sha, found)? {
                Some(id) => return Ok(id),
                None if fresh => return self.still_missing(repo, mirror, &mut state, &sha).await,
                None => false,
            },
            Err(error) if error.is_mirror_damage() => true,
            Err(error) => return Err(error),
        };
        if damaged && mirror.dir.exists() {
            tracing::warn!(repo = %redact_url(&repo.url), "git mirror cannot be read, re-cloning");
        }
        self.update(repo, mirror, &mut state, damaged).await?;
        match self.lookup(repo, mirror, &sha).await {
            Ok(found) => match settle(repo, &sha, found)? {
                Some(id) => Ok(id),
                None => self.still_missing(repo, mirror, &mut state, &sha).await,
            },
            Err(error) if error.is_mirror_damage() && !damaged => {
                tracing::warn!(repo = %redact_url(&repo.url), error = %error, "git mirror damaged after fetch, re-cloning");
                self.update(repo, mirror, &mut state, true).await?;
                let found = self.lookup(repo, mirror, &sha).await?;
                settle(repo, &sha, found)?.ok_or_else(|| not_found(repo, &sha))
            }
            Err(error) => Err(error),
        }
    }

    /// After an up-to-date fetch the commit is still absent: try fetching a full SHA by
    /// id (commits outside branches and tags), and re-clone if ref tips are missing
    /// (deleted packs); otherwise the revision does not exist.
    async fn still_missing(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        state: &mut FetchState,
        sha: &str,
    ) -> Result<ObjectId, GitError> {
        let url = redact_url(&repo.url);
        let check_url = url.clone();
        let intact = self
            .read_once(mirror, &url, move |r| tree::ref_tips_present(r, &check_url))
            .await
            .map(|(_, intact)| intact)
            .unwrap_or(false);
        if !intact {
            tracing::warn!(repo = %url, "git mirror is missing objects, re-cloning");
            self.update(repo, mirror, state, true).await?;
        } else if is_full_sha(sha) {
            let refspec = format!("+{sha}:refs/keelson/commits/{sha}");
            if let Err(error) = self.fetch(repo, mirror.dir.clone(), vec![refspec]).await {
                tracing::debug!(repo = %url, error = %error, "fetching a commit by id failed");
            }
        } else {
            return Err(not_found(repo, sha));
        }
        let found = self.lookup(repo, mirror, sha).await?;
        settle(repo, sha, found)?.ok_or_else(|| not_found(repo, sha))
    }

    /// Brings the mirror up to date: a fresh clone when it is missing or `reclone`, else
    /// a fetch; a fetch that fails for a local reason triggers `git fsck` and, if that
    /// fails too, a fresh clone.
    async fn update(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        state: &mut FetchState,
        reclone: bool,
    ) -> Result<(), GitError> {
        let started = Instant::now();
        let result = if reclone || !mirror.dir.join("HEAD").exists() {
            self.clone_fresh(repo, mirror).await
        } else {
            let refspecs = REFSPECS.iter().map(|s| s.to_string()).collect();
            match self.fetch(repo, mirror.dir.clone(), refspecs).await {
                Ok(()) => Ok(()),
                Err(error) if error.is_remote() => Err(error),
                Err(error) => {
                    if self.fsck(repo, mirror).await.is_ok() {
                        Err(error)
                    } else {
                        tracing::warn!(repo = %redact_url(&repo.url), error = %error, "git mirror failed fsck, re-cloning");
                        self.clone_fresh(repo, mirror).await
                    }
                }
            }
        };
        state.last = Some(Attempt {
            started,
            outcome: result.as_ref().map(|_| ()).map_err(GitError::shareable),
        });
        result
    }

    /// Clones into a temporary directory and swaps it in place of the mirror.
    async fn clone_fresh(&self, repo: &RepoAccess, mirror: &Arc<Mirror>) -> Result<(), GitError> {
        let url = redact_url(&repo.url);
        let install_error = |path: &std::path::Path, source| GitError::InstallMirror {
            url: url.clone(),
            path: path.display().to_string(),
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}-new-", mirror.key))
            .tempdir_in(&self.inner.tmp_dir)
            .map_err(|source| install_error(&self.inner.tmp_dir, source))?;
        let init = Invocation {
            step: GitStep::Init,
            args: vec![
                "init".into(),
                "--bare".into(),
                "--quiet".into(),
                tmp.path().into(),
            ],
            git_dir: None,
            timeout: self.inner.config.fetch_timeout,
        };
        self.inner.cli.run(repo, init).await?;
        let refspecs = REFSPECS.iter().map(|s| s.to_string()).collect();
        self.fetch(repo, tmp.path().to_path_buf(), refspecs).await?;
        let old = self.inner.tmp_dir.join(format!(
            "{}-old-{}",
            mirror.key,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let had_old = mirror.dir.exists();
        if had_old {
            std::fs::rename(&mirror.dir, &old)
                .map_err(|source| install_error(&mirror.dir, source))?;
        }
        let fresh = tmp.keep();
        std::fs::rename(&fresh, &mirror.dir)
            .map_err(|source| install_error(&mirror.dir, source))?;
        mirror.generation.fetch_add(1, Ordering::AcqRel);
        *mirror.opened.lock() = None;
        if had_old {
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(old));
        }
        tracing::info!(repo = %url, dir = %mirror.dir.display(), "git mirror cloned");
        Ok(())
    }

    /// One fetch of `refspecs` into the bare repository `git_dir`, reported to the observer.
    async fn fetch(
        &self,
        repo: &RepoAccess,
        git_dir: PathBuf,
        refspecs: Vec<String>,
    ) -> Result<(), GitError> {
        let started = Instant::now();
        let mut args: Vec<OsString> = ["fetch", "--quiet", "--force", "--prune"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push("--".into());
        args.push(repo.url.clone().into());
        args.extend(refspecs.into_iter().map(OsString::from));
        let invocation = Invocation {
            step: GitStep::Fetch,
            args,
            git_dir: Some(&git_dir),
            timeout: self.inner.config.fetch_timeout,
        };
        let result = self.inner.cli.run(repo, invocation).await;
        self.observe(GitRequestKind::Fetch, repo, started, result.is_err());
        tracing::debug!(repo = %redact_url(&repo.url), elapsed_ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "git fetch");
        result.map(|_| ())
    }

    /// `git fsck --connectivity-only` of the mirror.
    async fn fsck(&self, repo: &RepoAccess, mirror: &Arc<Mirror>) -> Result<(), GitError> {
        let invocation = Invocation {
            step: GitStep::Fsck,
            args: vec![
                "fsck".into(),
                "--connectivity-only".into(),
                "--no-dangling".into(),
            ],
            git_dir: Some(&mirror.dir),
            timeout: self.inner.config.fetch_timeout,
        };
        self.inner.cli.run(repo, invocation).await.map(|_| ())
    }

    /// Looks a SHA up in the mirror.
    async fn lookup(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        sha: &str,
    ) -> Result<Lookup, GitError> {
        let url = redact_url(&repo.url);
        let sha = sha.to_string();
        let lookup_url = url.clone();
        self.read_once(mirror, &url, move |r| {
            tree::find_commit(r, &lookup_url, &sha)
        })
        .await
        .map(|(_, found)| found)
    }

    /// Runs a blocking read on the mirror; if the mirror turns out damaged, re-clones it
    /// once (unless another request already did) and runs the read again.
    pub(super) async fn read<T, F>(
        &self,
        repo: &RepoAccess,
        mirror: &Arc<Mirror>,
        op: F,
    ) -> Result<T, GitError>
    where
        T: Send + 'static,
        F: Fn(&gix::Repository) -> Result<T, GitError> + Send + Sync + 'static,
    {
        let url = redact_url(&repo.url);
        let op = Arc::new(op);
        let first = op.clone();
        let generation = mirror.generation.load(Ordering::Acquire);
        match self.read_once(mirror, &url, move |r| first(r)).await {
            Err(error) if error.is_mirror_damage() => {
                tracing::warn!(repo = %url, error = %error, "git mirror damaged, re-cloning");
                let mut state = mirror.fetch.lock().await;
                if mirror.generation.load(Ordering::Acquire) == generation {
                    self.update(repo, mirror, &mut state, true).await?;
                }
                drop(state);
                self.read_once(mirror, &url, move |r| op(r))
                    .await
                    .map(|(_, v)| v)
            }
            other => other.map(|(_, v)| v),
        }
    }

    /// Runs `op` on the mirror's gix repository in `spawn_blocking`; returns the
    /// generation read with the result.
    async fn read_once<T, F>(
        &self,
        mirror: &Arc<Mirror>,
        url: &str,
        op: F,
    ) -> Result<(u64, T), GitError>
    where
        T: Send + 'static,
        F: FnOnce(&gix::Repository) -> Result<T, GitError> + Send + 'static,
    {
        let mirror = mirror.clone();
        let url = url.to_string();
        tokio::task::spawn_blocking(move || {
            let (generation, repo) = mirror.open(&url)?;
            op(&repo).map(|value| (generation, value))
        })
        .await
        .map_err(|source| GitError::BlockingTask { source })?
    }
}

/// A lookup's outcome as a commit id, `None` when missing, an error when ambiguous.
fn settle(repo: &RepoAccess, sha: &str, found: Lookup) -> Result<Option<ObjectId>, GitError> {
    match found {
        Lookup::Found(id) => Ok(Some(id)),
        Lookup::Missing => Ok(None),
        Lookup::Ambiguous => Err(GitError::AmbiguousRevision {
            revision: sha.to_string(),
            url: redact_url(&repo.url),
        }),
    }
}

/// The revision-not-found error.
fn not_found(repo: &RepoAccess, sha: &str) -> GitError {
    GitError::RevisionNotFound {
        revision: sha.to_string(),
        url: redact_url(&repo.url),
    }
}
