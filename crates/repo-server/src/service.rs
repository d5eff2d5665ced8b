//! The `RepoServer` gRPC service: resolves the revision, answers from the manifest cache
//! (also across commits that do not touch the app's manifest-generate-paths), and on a
//! miss renders from the commit's shared checkout (a private copy for renderers that
//! write into it), within the parallelism limit.

use crate::cache_key;
use crate::checkouts::{Checkout, CheckoutCache, CheckoutError};
use crate::git::{GitError, GitStore, RepoAccess};
use crate::metrics::RepoMetrics;
use crate::render::{self, Limits, RenderError, RenderRequest, Tools, Tracking, TrackingMethod};
use bytes::Bytes;
use keelson_cache::ManifestCache;
use keelson_model::ApplicationSource;
use keelson_proto::repo_server::repo_server_server::RepoServer;
use keelson_proto::repo_server::{
    GetFilesRequest, GetFilesResponse, ListDirectoriesRequest, ListDirectoriesResponse,
    ManifestRequest, ManifestResponse, Repository, ResolveRevisionRequest, ResolveRevisionResponse,
    TestRepositoryRequest, TestRepositoryResponse,
};
use prost::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

/// Errors of the service, each mapped to the gRPC code a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A Git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Preparing the checkout failed.
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
}

impl ServiceError {
    /// The gRPC status for this error.
    pub fn to_status(&self) -> Status {
        let code = match self {
            ServiceError::InvalidRequest(_) => tonic::Code::InvalidArgument,
            ServiceError::Git(e) => git_code(e),
            ServiceError::Render(e) => render_code(e),
            ServiceError::Checkout(CheckoutError::Git(e)) => git_code(e),
            ServiceError::Checkout(CheckoutError::Scratch(_)) => tonic::Code::Internal,
        };
        Status::new(code, error_chain(self))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// Configuration of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where scratch checkouts are made.
    pub scratch_dir: PathBuf,
    /// Concurrent renders (0: unlimited), `--parallelism-limit`.
    pub parallelism_limit: usize,
    /// Renderer binaries and plugins.
    pub tools: Tools,
    /// Render time and size limits.
    pub limits: Limits,
    /// Kube version given to Helm when the request names none.
    pub default_kube_version: String,
}

/// The repo-server's service; cheap to clone.
#[derive(Clone)]
pub struct RepoService {
    inner: Arc<Inner>,
}

struct Inner {
    git: GitStore,
    cache: ManifestCache,
    config: ServiceConfig,
    slots: Option<Semaphore>,
    metrics: RepoMetrics,
    checkouts: CheckoutCache,
    /// Checkouts of single plain directories (many per commit, each small).
    subtrees: CheckoutCache,
}

impl std::fmt::Debug for RepoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RepoService {
    /// A service over a Git store and a cache.
    pub fn new(
        git: GitStore,
        cache: ManifestCache,
        config: ServiceConfig,
        metrics: RepoMetrics,
    ) -> Self {
        let slots =
            (config.parallelism_limit > 0).then(|| Semaphore::new(config.parallelism_limit));
        let checkouts = CheckoutCache::new(config.scratch_dir.clone(), 16);
        let subtrees = CheckoutCache::new(config.scratch_dir.clone(), 256);
        Self {
            inner: Arc::new(Inner {
                git,
                cache,
                config,
                slots,
                metrics,
                checkouts,
                subtrees,
            }),
        }
    }

    /// Renders (or recalls) the manifests of one source at one revision.
    pub async fn generate(&self, req: ManifestRequest) -> Result<ManifestResponse, ServiceError> {
        let result = self.generate_inner(&req).await;
        if result.is_err() {
            self.inner.metrics.manifest_request("error");
        }
        result
    }

    async fn generate_inner(
        &self,
        req: &ManifestRequest,
    ) -> Result<ManifestResponse, ServiceError> {
        let source: ApplicationSource = serde_json::from_str(&req.source_json).map_err(|e| {
            ServiceError::InvalidRequest(format!("source_json is not an application source: {e}"))
        })?;
        let access = access(req.repo.as_ref())?;
        let revision = if req.revision.is_empty() {
            source.target_revision.clone().unwrap_or_default()
        } else {
            req.revision.clone()
        };
        let sha = if req.no_revision_cache || req.no_cache {
            self.inner.git.resolve_latest(&access, &revision).await?
        } else if let Some(floor) = listed_after(req.refs_listed_after_unix_ms) {
            let git = &self.inner.git;
            git.resolve_listed_after(&access, &revision, floor).await?
        } else {
            self.inner.git.resolve(&access, &revision).await?
        };
        let key = cache_key::manifests_key(req, &sha);
        if !req.no_cache {
            if let Some(hit) = self.recall(&key).await {
                self.inner.metrics.manifest_request("hit");
                return Ok(hit);
            }
            if let Some(reused) = self.reuse_unaffected(req, &access, &sha, &source).await {
                self.inner.metrics.manifest_request("reused");
                self.store(&key, &reused).await;
                return Ok(reused);
            }
        }
        let response = self.render(req, &access, &sha, &source).await?;
        self.inner.metrics.manifest_request("rendered");
        self.store(&key, &response).await;
        self.inner
            .cache
            .put(
                &cache_key::last_commit_key(req),
                Bytes::from(sha.clone().into_bytes()),
            )
            .await;
        Ok(response)
    }

    async fn recall(&self, key: &str) -> Option<ManifestResponse> {
        let bytes = self.inner.cache.get(key).await?;
        let mut resp = ManifestResponse::decode(bytes).ok()?;
        resp.cached = true;
        Some(resp)
    }

    async fn store(&self, key: &str, resp: &ManifestResponse) {
        let mut stored = resp.clone();
        stored.cached = false;
        self.inner
            .cache
            .put(key, Bytes::from(stored.encode_to_vec()))
            .await;
    }

    /// With `manifest-generate-paths`, the manifests of the last rendered commit answer a
    /// newer commit that changed nothing under those paths.
    async fn reuse_unaffected(
        &self,
        req: &ManifestRequest,
        access: &RepoAccess,
        sha: &str,
        source: &ApplicationSource,
    ) -> Option<ManifestResponse> {
        if req.manifest_generate_paths.trim().is_empty() {
            return None;
        }
        let last = self
            .inner
            .cache
            .get(&cache_key::last_commit_key(req))
            .await?;
        let last = String::from_utf8(last.to_vec()).ok()?;
        if last == sha {
            return None;
        }
        let previous = self.recall(&cache_key::manifests_key(req, &last)).await?;
        let changed = self
            .inner
            .git
            .changed_paths(access, &last, sha)
            .await
            .ok()?;
        let app_path = source.path.as_deref().unwrap_or_default();
        if cache_key::paths_affected(&req.manifest_generate_paths, app_path, &changed) {
            return None;
        }
        Some(ManifestResponse {
            revision: sha.to_owned(),
            ..previous
        })
    }

    /// The checkout to render `source` from: only its directory when that is a plain
    /// directory standing on its own (a new commit of a monorepo then costs a few
    /// files, not the whole tree), else the whole tree of the commit.
    async fn checkout(
        &self,
        access: &RepoAccess,
        sha: &str,
        path: &str,
        source: &ApplicationSource,
    ) -> Result<Checkout, ServiceError> {
        let (git, tools) = (&self.inner.git, &self.inner.config.tools);
        if !path.trim_matches(['/', '.']).is_empty() && source.chart.is_none() {
            let sub = self.inner.subtrees.subtree(git, access, sha, path).await?;
            let plain = matches!(
                render::detect_source_type(sub.path(), path, source, tools),
                Ok(render::SourceType::Directory)
            );
            if plain && sub.is_self_contained() {
                return Ok(sub);
            }
        }
        Ok(self.inner.checkouts.shared(git, access, sha).await?)
    }

    async fn render(
        &self,
        req: &ManifestRequest,
        access: &RepoAccess,
        sha: &str,
        source: &ApplicationSource,
    ) -> Result<ManifestResponse, ServiceError> {
        let pending = self.inner.metrics.pending.clone();
        pending.inc();
        let permit = match &self.inner.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        pending.dec();
        let path = source.path.as_deref().unwrap_or_default();
        let shared = self.checkout(access, sha, path, source).await?;
        // Kustomize edits and plugins write into the checkout: they get a private copy.
        let writes = matches!(
            render::detect_source_type(shared.path(), path, source, &self.inner.config.tools),
            Ok(render::SourceType::Kustomize | render::SourceType::Plugin)
        );
        let scratch = if writes {
            self.inner.checkouts.private_copy(&shared).await?
        } else {
            shared
        };
        let tracking = tracking(req);
        let kube_version = if req.kube_version.is_empty() {
            self.inner.config.default_kube_version.clone()
        } else {
            req.kube_version.clone()
        };
        let render_req = RenderRequest {
            root: scratch.path(),
            path: source.path.as_deref().unwrap_or_default(),
            source,
            app_name: &req.app_name,
            namespace: &req.namespace,
            revision: sha,
            repo_url: &access.url,
            kube_version: &kube_version,
            api_versions: &req.api_versions,
            tracking: &tracking,
            tools: &self.inner.config.tools,
            limits: &self.inner.config.limits,
        };
        let started = Instant::now();
        let rendered = render::render(&render_req).await?;
        drop(permit);
        let source_type = rendered.source_type.to_string();
        self.inner
            .metrics
            .render(&source_type, started.elapsed().as_secs_f64());
        let manifests = rendered
            .objects
            .iter()
            .map(serde_json::Value::to_string)
            .collect();
        Ok(ManifestResponse {
            manifests,
            revision: sha.to_owned(),
            source_type,
            cached: false,
        })
    }

    /// Resolves a revision to a commit SHA.
    pub async fn resolve(
        &self,
        req: ResolveRevisionRequest,
    ) -> Result<ResolveRevisionResponse, ServiceError> {
        let sha = self
            .inner
            .git
            .resolve(&access(req.repo.as_ref())?, &req.revision)
            .await?;
        Ok(ResolveRevisionResponse { revision: sha })
    }

    /// Directories of the repository at a revision.
    pub async fn list_directories(
        &self,
        req: ListDirectoriesRequest,
    ) -> Result<ListDirectoriesResponse, ServiceError> {
        let access = access(req.repo.as_ref())?;
        let sha = self.inner.git.resolve(&access, &req.revision).await?;
        let paths = self.inner.git.list_directories(&access, &sha).await?;
        Ok(ListDirectoriesResponse {
            paths,
            revision: sha,
        })
    }

    /// Files matching a glob at a revision.
    pub async fn get_files(&self, req: GetFilesRequest) -> Result<GetFilesResponse, ServiceError> {
        let access = access(req.repo.as_ref())?;
        let sha = self.inner.git.resolve(&access, &req.revision).await?;
        let files = self
            .inner
            .git
            .get_files(&access, &sha, &req.glob)
            .await?
            .into_iter()
            .collect();
        Ok(GetFilesResponse {
            files,
            revision: sha,
        })
    }

    /// Checks a repository is reachable.
    pub async fn test_repository(
        &self,
        req: TestRepositoryRequest,
    ) -> Result<TestRepositoryResponse, ServiceError> {
        self.inner.git.test(&access(req.repo.as_ref())?).await?;
        Ok(TestRepositoryResponse { verified: true })
    }
}

fn access(repo: Option<&Repository>) -> Result<RepoAccess, ServiceError> {
    let repo = repo
        .filter(|r| !r.url.is_empty())
        .ok_or_else(|| ServiceError::InvalidRequest("repository url is required".into()))?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(RepoAccess {
        url: repo.url.clone(),
        username: opt(&repo.username),
        password: opt(&repo.password),
        ssh_private_key: opt(&repo.ssh_private_key),
        insecure: repo.insecure,
        proxy: opt(&repo.proxy),
    })
}

fn tracking(req: &ManifestRequest) -> Tracking {
    let t = req.tracking.clone().unwrap_or_default();
    let method = TrackingMethod::parse(&t.method).unwrap_or_default();
    Tracking {
        method,
        label_key: if t.label_key.is_empty() {
            keelson_model::annotations::APP_INSTANCE_LABEL.to_owned()
        } else {
            t.label_key
        },
        app_instance: if t.app_instance.is_empty() {
            req.app_name.clone()
        } else {
            t.app_instance
        },
        app_namespace: req.namespace.clone(),
    }
}

#[tonic::async_trait]
impl RepoServer for RepoService {
    async fn generate_manifests(
        &self,
        request: Request<ManifestRequest>,
    ) -> Result<Response<ManifestResponse>, Status> {
        self.generate(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn resolve_revision(
        &self,
        request: Request<ResolveRevisionRequest>,
    ) -> Result<Response<ResolveRevisionResponse>, Status> {
        self.resolve(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn list_directories(
        &self,
        request: Request<ListDirectoriesRequest>,
    ) -> Result<Response<ListDirectoriesResponse>, Status> {
        RepoService::list_directories(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn get_files(
        &self,
        request: Request<GetFilesRequest>,
    ) -> Result<Response<GetFilesResponse>, Status> {
        RepoService::get_files(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn test_repository(
        &self,
        request: Request<TestRepositoryRequest>,
    ) -> Result<Response<TestRepositoryResponse>, Status> {
        self.test_repository(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }
}

/// gRPC codes of Git failures: a missing repo or revision is NotFound, credentials are
/// PermissionDenied/Unauthenticated, network trouble is Unavailable (retried by the
/// pool on another server), timeouts DeadlineExceeded.
fn git_code(e: &GitError) -> tonic::Code {
    use tonic::Code;
    match e {
        GitError::RepositoryNotFound { .. } | GitError::RevisionNotFound { .. } => Code::NotFound,
        GitError::AuthenticationFailed { .. } => Code::Unauthenticated,
        GitError::Unreachable { .. } => Code::Unavailable,
        GitError::Timeout { .. } => Code::DeadlineExceeded,
        GitError::AmbiguousRevision { .. }
        | GitError::NotACommit { .. }
        | GitError::InvalidGlob { .. }
        | GitError::UnsafePath { .. } => Code::InvalidArgument,
        GitError::TreeTooLarge { .. } | GitError::FilesTooLarge { .. } => Code::ResourceExhausted,
        _ => Code::Internal,
    }
}

/// gRPC codes of render failures: bad repository content is InvalidArgument (the
/// user must fix Git), a missing tool or plugin FailedPrecondition, limits
/// ResourceExhausted or DeadlineExceeded.
fn render_code(e: &RenderError) -> tonic::Code {
    use crate::render::process::ProcessError;
    use tonic::Code;
    match e {
        RenderError::ToolMissing { .. }
        | RenderError::PluginNotConfigured(_)
        | RenderError::PluginNotDiscovered => Code::FailedPrecondition,
        RenderError::Process(ProcessError::NotFound { .. }) => Code::FailedPrecondition,
        RenderError::Process(ProcessError::TimedOut { .. })
        | RenderError::JsonnetTimeout { .. } => Code::DeadlineExceeded,
        RenderError::Process(ProcessError::OutputTooLarge { .. })
        | RenderError::OutputTooLarge { .. }
        | RenderError::FileTooLarge { .. } => Code::ResourceExhausted,
        RenderError::Process(ProcessError::Spawn { .. } | ProcessError::Io { .. })
        | RenderError::JsonnetWorker(_) => Code::Internal,
        _ => Code::InvalidArgument,
    }
}

/// The monotonic instant of a wall-clock floor in Unix milliseconds (`None` for 0). A
/// floor ahead of this host's clock maps to now (refs are listed again rather than
/// trusting a cache the caller says may be stale); one older than the monotonic clock's
/// origin is no floor.
fn listed_after(unix_ms: u64) -> Option<std::time::Instant> {
    if unix_ms == 0 {
        return None;
    }
    let floor = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    let ago = std::time::SystemTime::now()
        .duration_since(floor)
        .unwrap_or_default();
    std::time::Instant::now().checked_sub(ago)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use super::listed_after;

    fn unix_ms(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    #[test]
    fn floors_map_to_the_monotonic_clock() {
        assert_eq!(listed_after(0), None);
        let before = Instant::now();
        let past = listed_after(unix_ms(SystemTime::now() - Duration::from_secs(10)));
        assert!(past.is_some_and(|p| p < before - Duration::from_secs(9)));
        let future = listed_after(unix_ms(SystemTime::now() + Duration::from_secs(60)));
        assert!(future.is_some_and(|f| f >= before), "a future floor is now");
    }
}
