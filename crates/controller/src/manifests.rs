//! Desired state: repository credentials from repository Secrets, and the rendered
//! manifests of every source of an Application, fetched from the repo-server pool.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use keelson_model::annotations::{
    MANIFEST_GENERATE_PATHS, SECRET_TYPE, SECRET_TYPE_REPO_CREDS, SECRET_TYPE_REPOSITORY,
};
use keelson_model::repo_secret::{best_repo_creds, normalize_repo_url};
use keelson_model::tracking::TrackingMethod;
use keelson_model::{Application, ApplicationSource, RepoCredsSpec, RepoSpec};
use keelson_proto::repo_server::{ManifestRequest, Repository, Tracking};
use keelson_repo_server::pool::RepoClient;
use parking_lot::RwLock;
use serde_json::Value;

use crate::error::ManifestError;

/// Repository and credential-template Secrets, by Secret name.
#[derive(Debug, Default)]
pub struct RepoSecrets {
    inner: RwLock<(HashMap<String, RepoSpec>, HashMap<String, RepoCredsSpec>)>,
}

impl RepoSecrets {
    /// Takes a Secret in; returns whether what it registers changed.
    pub fn upsert(&self, secret: &Secret) -> bool {
        let kind = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SECRET_TYPE))
            .map(String::as_str);
        let name = secret_key(secret);
        let mut inner = self.inner.write();
        match kind {
            Some(SECRET_TYPE_REPOSITORY) => match RepoSpec::from_secret(secret) {
                Ok(spec) => inner.0.insert(name, spec.clone()) != Some(spec),
                Err(e) => {
                    tracing::warn!(secret = %name, error = %e, "ignoring repository secret");
                    inner.0.remove(&name).is_some()
                }
            },
            Some(SECRET_TYPE_REPO_CREDS) => match RepoCredsSpec::from_secret(secret) {
                Ok(spec) => inner.1.insert(name, spec.clone()) != Some(spec),
                Err(e) => {
                    tracing::warn!(secret = %name, error = %e, "ignoring repo-creds secret");
                    inner.1.remove(&name).is_some()
                }
            },
            _ => false,
        }
    }

    /// Forgets a deleted Secret.
    pub fn remove(&self, secret: &str) {
        let mut inner = self.inner.write();
        inner.0.remove(secret);
        inner.1.remove(secret);
    }

    /// The repository message for `repo_url`: the registered repository (with inherited
    /// credentials) or the best credential template, else anonymous.
    pub fn repository(&self, repo_url: &str, helm: bool) -> Repository {
        let inner = self.inner.read();
        let wanted = normalize_repo_url(repo_url);
        let templates: Vec<RepoCredsSpec> = inner.1.values().cloned().collect();
        let found = inner
            .0
            .values()
            .find(|r| normalize_repo_url(&r.url) == wanted)
            .map(|r| r.with_inherited_creds(&templates));
        let mut repo = Repository {
            url: repo_url.to_owned(),
            r#type: if helm { "helm".into() } else { "git".into() },
            ..Repository::default()
        };
        let creds = match &found {
            Some(spec) => {
                repo.insecure = spec.insecure;
                Some(spec.creds.clone())
            }
            None => best_repo_creds(&templates, repo_url).map(|t| t.creds.clone()),
        };
        if let Some(c) = creds {
            repo.username = c.username.unwrap_or_default();
            repo.password = c.password.unwrap_or_default();
            repo.ssh_private_key = c.ssh_private_key.unwrap_or_default();
            repo.proxy = c.proxy.unwrap_or_default();
            repo.force_http_basic_auth = c.force_http_basic_auth;
        }
        repo
    }
}

/// When this controller last asked for each repository's branches as they are now
/// (Unix milliseconds, by normalized URL). Later requests that may use cached branch
/// resolutions carry it, so a repo-server other than the one that answered cannot
/// resolve a branch to an older commit than the app was just compared (and synced) at.
#[derive(Debug, Default)]
pub struct RefsFreshness {
    asked: parking_lot::Mutex<HashMap<String, u64>>,
}

impl RefsFreshness {
    /// Notes that a request resolving `repo_url`'s branches now is about to be sent.
    fn asking_now(&self, repo_url: &str) {
        self.listed_at_least(repo_url, now_unix_ms());
    }

    /// Raises the floor of `repo_url` to `at_unix_ms` (a refresh asked at that time).
    fn listed_at_least(&self, repo_url: &str, at_unix_ms: u64) {
        let mut asked = self.asked.lock();
        let floor = asked.entry(normalize_repo_url(repo_url)).or_default();
        *floor = (*floor).max(at_unix_ms);
    }

    /// The floor for cached branch resolutions of `repo_url` (0: none).
    fn floor(&self, repo_url: &str) -> u64 {
        let asked = self.asked.lock();
        asked
            .get(&normalize_repo_url(repo_url))
            .copied()
            .unwrap_or(0)
    }
}

/// Now, in Unix milliseconds (0 before 1970).
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `namespace/name` of a Secret.
pub fn secret_key(secret: &Secret) -> String {
    format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The rendered result of all sources of an app.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Objects, in source order.
    pub objects: Vec<Value>,
    /// Resolved revision per rendered source.
    pub revisions: Vec<String>,
    /// Source type per rendered source.
    pub source_types: Vec<String>,
}

/// How much of the repo-server's caching a comparison may use (Argo CD's noCache and
/// noRevisionCache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheUse {
    /// Cached branch resolutions and manifests: a periodic resync or a sync.
    #[default]
    All,
    /// Branches and tags resolved against the remote now, manifests cached per commit:
    /// a normal refresh someone asked for, which must see a commit pushed a moment ago.
    LatestRevision,
    /// Branches and tags resolved by an ls-remote that started at or after this time
    /// (Unix milliseconds), manifests cached per commit: a refresh asked of many apps at
    /// once (`POST /api/v1/refresh`), which must see every commit pushed before it was
    /// asked, and whose apps share one ls-remote per repo-server instead of one each.
    ListedAfter(u64),
    /// Nothing cached: a hard refresh.
    Nothing,
}

/// What a manifest request needs besides the source.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    /// Tracking method.
    pub tracking: TrackingMethod,
    /// Tracking label key.
    pub label_key: &'a str,
    /// App instance name.
    pub instance: &'a str,
    /// Kubernetes version for renderers.
    pub kube_version: &'a str,
    /// Which repo-server caches may answer.
    pub cache: CacheUse,
    /// Time budget per source.
    pub timeout: Duration,
    /// When branches were last resolved now, per repository.
    pub freshness: &'a RefsFreshness,
}

fn tracking_name(method: TrackingMethod) -> &'static str {
    match method {
        TrackingMethod::Label => "label",
        TrackingMethod::Annotation => "annotation",
        TrackingMethod::AnnotationAndLabel => "annotation+label",
    }
}

/// Whether a source only provides files to other sources (`ref` without path/chart).
fn is_ref_only(source: &ApplicationSource) -> bool {
    source.ref_.as_deref().is_some_and(|r| !r.is_empty())
        && source.path.as_deref().is_none_or(str::is_empty)
        && source.chart.as_deref().is_none_or(str::is_empty)
}

/// Renders every source of `app` at `revisions` (one per source; `None` → the source's
/// targetRevision).
pub async fn fetch_desired(
    client: &RepoClient,
    repos: &RepoSecrets,
    app: &Application,
    sources: &[&ApplicationSource],
    revisions: Option<&[String]>,
    ctx: &RenderContext<'_>,
) -> Result<Desired, ManifestError> {
    let mut desired = Desired::default();
    let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
    let generate_paths = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANIFEST_GENERATE_PATHS))
        .cloned()
        .unwrap_or_default();
    for (index, source) in sources.iter().enumerate() {
        if is_ref_only(source) {
            continue;
        }
        let revision = revisions
            .and_then(|r| r.get(index))
            .filter(|r| !r.is_empty())
            .cloned()
            .or_else(|| source.target_revision.clone())
            .unwrap_or_default();
        let refs_listed_after_unix_ms = match ctx.cache {
            CacheUse::All => ctx.freshness.floor(&source.repo_url),
            CacheUse::ListedAfter(at) => {
                ctx.freshness.listed_at_least(&source.repo_url, at);
                ctx.freshness.floor(&source.repo_url)
            }
            CacheUse::LatestRevision | CacheUse::Nothing => {
                ctx.freshness.asking_now(&source.repo_url);
                0
            }
        };
        let source_json = serde_json::to_string(source)
            .map_err(|source| ManifestError::EncodeSource { index, source })?;
        let request = ManifestRequest {
            repo: Some(repos.repository(&source.repo_url, source.chart.is_some())),
            revision,
            source_json,
            app_name: ctx.instance.to_owned(),
            namespace: namespace.clone(),
            tracking: Some(Tracking {
                method: tracking_name(ctx.tracking).to_owned(),
                label_key: ctx.label_key.to_owned(),
                app_instance: ctx.instance.to_owned(),
            }),
            kube_version: ctx.kube_version.to_owned(),
            api_versions: Vec::new(),
            no_cache: ctx.cache == CacheUse::Nothing,
            no_revision_cache: matches!(ctx.cache, CacheUse::LatestRevision | CacheUse::Nothing),
            manifest_generate_paths: generate_paths.clone(),
            project: app.spec.project_or_default().to_owned(),
            refs_listed_after_unix_ms,
        };
        let response = tokio::time::timeout(ctx.timeout, client.generate_manifests(request))
            .await
            .map_err(|_| ManifestError::Timeout(ctx.timeout))?
            .map_err(|status| ManifestError::Generate {
                code: format!("{:?}", status.code()),
                message: status.message().to_owned(),
            })?;
        for doc in &response.manifests {
            let value: Value = serde_json::from_str(doc)
                .map_err(|source| ManifestError::DecodeManifest { index, source })?;
            desired.objects.push(value);
        }
        desired.revisions.push(response.revision);
        desired.source_types.push(response.source_type);
    }
    Ok(desired)
}
