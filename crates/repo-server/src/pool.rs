//! The controller's client of the repo-servers: a pool over a static endpoint list or a
//! DNS name re-resolved periodically, power-of-two-choices balancing on requests in
//! flight, a per-request deadline, and retries on another endpoint for UNAVAILABLE and
//! deadline errors (every repo-server call is idempotent); or an in-process service
//! with no network, for the demo and tests.

use crate::service::RepoService;
use keelson_proto::repo_server::repo_server_client::RepoServerClient;
use keelson_proto::repo_server::{
    GetFilesRequest, GetFilesResponse, ListDirectoriesRequest, ListDirectoriesResponse,
    ManifestRequest, ManifestResponse, ResolveRevisionRequest, ResolveRevisionResponse,
    TestRepositoryRequest, TestRepositoryResponse,
};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Errors building a pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// An endpoint address is not a valid URI.
    #[error("invalid repo-server endpoint {endpoint:?}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// No endpoint was given.
    #[error("no repo-server endpoints configured")]
    NoEndpoints,
}

/// Where the repo-servers are.
#[derive(Debug, Clone)]
pub enum Endpoints {
    /// A fixed list of `host:port` addresses.
    Static(Vec<String>),
    /// A DNS name (`host:port`) whose addresses are re-resolved every `refresh`.
    Dns {
        /// The name and port.
        name: String,
        /// How often to re-resolve.
        refresh: Duration,
    },
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where the servers are.
    pub endpoints: Endpoints,
    /// Deadline of one attempt.
    pub request_timeout: Duration,
    /// Attempts per call (on different endpoints when there are several).
    pub max_attempts: usize,
    /// How long an endpoint that failed to answer is avoided.
    pub eject_for: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            endpoints: Endpoints::Static(Vec::new()),
            request_timeout: Duration::from_secs(60),
            max_attempts: 3,
            eject_for: Duration::from_secs(5),
        }
    }
}

struct Member {
    addr: String,
    client: RepoServerClient<Channel>,
    in_flight: AtomicUsize,
    ejected_until: RwLock<Option<Instant>>,
}

impl Member {
    fn healthy(&self, now: Instant) -> bool {
        self.ejected_until.read().is_none_or(|t| now >= t)
    }
}

/// A repo-server client: remote pool or in-process.
#[derive(Clone)]
pub struct RepoClient {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Remote(Arc<Remote>),
    InProcess(RepoService),
}

struct Remote {
    config: PoolConfig,
    members: RwLock<Vec<Arc<Member>>>,
}

impl std::fmt::Debug for RepoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Remote(r) => f
                .debug_struct("RepoClient")
                .field(
                    "endpoints",
                    &r.members
                        .read()
                        .iter()
                        .map(|m| m.addr.clone())
                        .collect::<Vec<_>>(),
                )
                .finish(),
            Backend::InProcess(_) => f.write_str("RepoClient(in-process)"),
        }
    }
}

fn member(addr: &str) -> Result<Arc<Member>, PoolError> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|source| PoolError::InvalidEndpoint {
            endpoint: addr.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let client =
        RepoServerClient::new(endpoint.connect_lazy()).max_decoding_message_size(256 * 1024 * 1024);
    Ok(Arc::new(Member {
        addr: addr.to_owned(),
        client,
        in_flight: AtomicUsize::new(0),
        ejected_until: RwLock::new(None),
    }))
}

impl RepoClient {
    /// A client calling the service in process (no network).
    pub fn in_process(service: RepoService) -> Self {
        Self {
            backend: Backend::InProcess(service),
        }
    }

    /// A pool over remote repo-servers. With [`Endpoints::Dns`] it spawns a task
    /// re-resolving the name (needs a tokio runtime).
    pub async fn connect(config: PoolConfig) -> Result<Self, PoolError> {
        let members = match &config.endpoints {
            Endpoints::Static(list) if list.is_empty() => return Err(PoolError::NoEndpoints),
            Endpoints::Static(list) => list
                .iter()
                .map(|a| member(a))
                .collect::<Result<Vec<_>, _>>()?,
            Endpoints::Dns { name, .. } => resolve_members(name, &[]).await?,
        };
        let remote = Arc::new(Remote {
            config,
            members: RwLock::new(members),
        });
        if let Endpoints::Dns { name, refresh } = remote.config.endpoints.clone() {
            let weak = Arc::downgrade(&remote);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(refresh).await;
                    let Some(remote) = weak.upgrade() else { return };
                    let current = remote.members.read().clone();
                    match resolve_members(&name, &current).await {
                        Ok(next) if !next.is_empty() => *remote.members.write() = next,
                        Ok(_) => {
                            tracing::warn!(%name, "repo-server name resolved to no addresses; keeping the previous ones")
                        }
                        Err(e) => {
                            tracing::warn!(%name, error = %e, "re-resolving repo-servers failed")
                        }
                    }
                }
            });
        }
        Ok(Self {
            backend: Backend::Remote(remote),
        })
    }

    /// `GenerateManifests`.
    pub async fn generate_manifests(
        &self,
        req: ManifestRequest,
    ) -> Result<ManifestResponse, Status> {
        match &self.backend {
            Backend::InProcess(s) => s.generate(req).await.map_err(|e| e.to_status()),
            Backend::Remote(r) => {
                r.call(
                    req,
                    |mut c, req| async move { c.generate_manifests(req).await },
                )
                .await
            }
        }
    }

    /// `ResolveRevision`.
    pub async fn resolve_revision(
        &self,
        req: ResolveRevisionRequest,
    ) -> Result<ResolveRevisionResponse, Status> {
        match &self.backend {
            Backend::InProcess(s) => s.resolve(req).await.map_err(|e| e.to_status()),
            Backend::Remote(r) => {
                r.call(
                    req,
                    |mut c, req| async move { c.resolve_revision(req).await },
                )
                .await
            }
        }
    }

    /// `ListDirectories`.
    pub async fn list_directories(
        &self,
        req: ListDirectoriesRequest,
    ) -> Result<ListDirectoriesResponse, Status> {
        match &self.backend {
            Backend::InProcess(s) => s.list_directories(req).await.map_err(|e| e.to_status()),
            Backend::Remote(r) => {
                r.call(
                    req,
                    |mut c, req| async move { c.list_directories(req).await },
                )
                .await
            }
        }
    }

    /// `GetFiles`.
    pub async fn get_files(&self, req: GetFilesRequest) -> Result<GetFilesResponse, Status> {
        match &self.backend {
            Backend::InProcess(s) => s.get_files(req).await.map_err(|e| e.to_status()),
            Backend::Remote(r) => {
                r.call(req, |mut c, req| async move { c.get_files(req).await })
                    .await
            }
        }
    }

    /// `TestRepository`.
    pub async fn test_repository(
        &self,
        req: TestRepositoryRequest,
    ) -> Result<TestRepositoryResponse, Status> {
        match &self.backend {
            Backend::InProcess(s) => s.test_repository(req).await.map_err(|e| e.to_status()),
            Backend::Remote(r) => {
                r.call(
                    req,
                    |mut c, req| async move { c.test_repository(req).await },
                )
                .await
            }
        }
    }
}

impl Remote {
    /// One call with retries on other endpoints for retryable failures.
    async fn call<Req, Resp, F, Fut>(&self, req: Req, f: F) -> Result<Resp, Status>
    where
        Req: Clone,
        F: Fn(RepoServerClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let mut tried: Vec<String> = Vec::new();
        let mut last = Status::unavailable("no repo-server endpoints available");
        for _ in 0..self.config.max_attempts.max(1) {
            let Some(m) = self.pick(&tried) else { break };
            tried.push(m.addr.clone());
            let mut request = tonic::Request::new(req.clone());
            request.set_timeout(self.config.request_timeout);
            m.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = f(m.client.clone(), request).await;
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) if retryable(status.code()) => {
                    if matches!(status.code(), Code::Unavailable | Code::Cancelled) {
                        *m.ejected_until.write() = Some(Instant::now() + self.config.eject_for);
                    }
                    tracing::debug!(endpoint = %m.addr, code = ?status.code(), "repo-server call failed; retrying elsewhere");
                    last = status;
                }
                Err(status) => return Err(status),
            }
        }
        Err(last)
    }

    /// Power of two choices among healthy members not yet tried (falling back to any
    /// untried member, then any member).
    fn pick(&self, tried: &[String]) -> Option<Arc<Member>> {
        let members = self.members.read();
        let now = Instant::now();
        let untried: Vec<&Arc<Member>> = members
            .iter()
            .filter(|m| !tried.contains(&m.addr))
            .collect();
        let healthy: Vec<&Arc<Member>> =
            untried.iter().copied().filter(|m| m.healthy(now)).collect();
        let pool = if !healthy.is_empty() {
            healthy
        } else if !untried.is_empty() {
            untried
        } else {
            members.iter().collect()
        };
        match pool.len() {
            0 => None,
            1 => Some(Arc::clone(pool[0])),
            n => {
                let a = rand::random_range(0..n);
                let mut b = rand::random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let (ma, mb) = (pool[a], pool[b]);
                let load = |m: &Member| m.in_flight.load(Ordering::Relaxed);
                Some(Arc::clone(if load(mb) < load(ma) { mb } else { ma }))
            }
        }
    }
}

/// Failures worth another endpoint. `Cancelled` counts: the pool never cancels a call
/// itself, so it means the connection died under the request (a killed server).
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Cancelled
    )
}

async fn resolve_members(
    name: &str,
    current: &[Arc<Member>],
) -> Result<Vec<Arc<Member>>, PoolError> {
    let addrs: Vec<String> = match tokio::net::lookup_host(name).await {
        Ok(it) => it.map(|a| a.to_string()).collect(),
        Err(e) => {
            tracing::warn!(%name, error = %e, "resolving repo-servers failed");
            Vec::new()
        }
    };
    addrs
        .iter()
        .map(|a| match current.iter().find(|m| &m.addr == a) {
            Some(existing) => Ok(Arc::clone(existing)),
            None => member(a),
        })
        .collect()
}
