//! Wiring of one controller: reads its config maps, builds the shared state, runs the
//! watchers (Applications, AppProjects, cluster and repository Secrets) and the refresh
//! and operation workers, and shuts them down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use keelson_cluster_cache::{AppChange, CacheMetrics, ChangeSink, ResourceFilter};
use keelson_diff::{DiffConfig, IgnoreRules};
use keelson_health::{HealthAssessor, HealthConfig};
use keelson_model::annotations::{REFRESH, SECRET_TYPE, SECRET_TYPE_CLUSTER};
use keelson_model::{AppProject, Application, OperationPhase};
use keelson_repo_server::pool::RepoClient;
use keelson_workqueue::{QueueMetrics, RateLimiter, WorkQueue};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use parking_lot::Mutex;
use prometheus::Registry;
use tokio::task::JoinHandle;

use crate::clusters::{CacheSettings, ClusterRegistry};
use crate::error::StartError;
use crate::fence::AppFence;
use crate::manifests::{RefsFreshness, RepoSecrets, secret_key};
use crate::metrics::ControllerMetrics;
use crate::settings::ControllerSettings;
use crate::shared::{AppKey, Shared, app_key};

/// Name of the refresh queue (Argo CD's).
pub const REFRESH_QUEUE: &str = "app_reconciliation_queue";
/// Name of the operation queue (Argo CD's).
pub const OPERATION_QUEUE: &str = "app_operation_processing_queue";

/// What a controller is started with.
pub struct ControllerConfig {
    /// Settings (from flags).
    pub settings: ControllerSettings,
    /// Management cluster client.
    pub client: kube::Client,
    /// Repo-server pool (or in-process service).
    pub repo: RepoClient,
    /// Registry the metrics go into.
    pub registry: Registry,
    /// Which apps this replica may work on.
    pub fence: Arc<dyn AppFence>,
}

/// A running controller.
pub struct Controller {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

/// Sends cluster-cache changes to the refresh queue.
struct QueueSink {
    queue: WorkQueue<AppKey>,
    namespace: String,
}

impl ChangeSink for QueueSink {
    fn on_change(&self, change: AppChange) {
        self.queue.add(app_key(&self.namespace, &change.app));
    }
}

async fn config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, StartError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = api
        .get_opt(name)
        .await
        .map_err(|source| StartError::ConfigMap {
            name: name.to_owned(),
            source,
        })?;
    Ok(cm.and_then(|c| c.data).unwrap_or_default())
}

fn config_err<E: std::error::Error + Send + Sync + 'static>(
    key: &str,
) -> impl Fn(E) -> StartError + '_ {
    move |e| StartError::Config {
        key: key.to_owned(),
        source: Box::new(e),
    }
}

/// Settings from flags, with argocd-cmd-params-cm / argocd-cm values used for the knobs
/// the flags left at their defaults.
fn effective_settings(
    flags: ControllerSettings,
    params: &BTreeMap<String, String>,
    argocd_cm: &BTreeMap<String, String>,
) -> ControllerSettings {
    let defaults = ControllerSettings::default();
    let mut from_cm = defaults.clone();
    for ignored in from_cm.apply_argocd_cm(argocd_cm) {
        tracing::warn!(key = %ignored.key, value = %ignored.value, "ignoring invalid argocd-cm value");
    }
    for ignored in from_cm.apply_cmd_params(params) {
        tracing::warn!(key = %ignored.key, value = %ignored.value, "ignoring invalid argocd-cmd-params-cm value");
    }
    let mut s = flags;
    macro_rules! take {
        ($($f:ident),*) => {$(
            if s.$f == defaults.$f { s.$f = from_cm.$f.clone(); }
        )*};
    }
    take!(
        status_processors,
        operation_processors,
        kubectl_parallelism_limit,
        repo_timeout,
        app_resync,
        app_resync_jitter,
        app_hard_resync,
        tracking,
        label_key,
        sharding_algorithm
    );
    s
}

impl Controller {
    /// Starts the controller's watchers and workers (inside a tokio runtime). Returns once
    /// the Application and AppProject stores are filled and the workers run.
    pub async fn start(config: ControllerConfig) -> Result<Controller, StartError> {
        let ControllerConfig {
            settings,
            client,
            repo,
            registry,
            fence,
        } = config;
        let ns = settings.namespace.clone();
        let argocd_cm = config_map(&client, &ns, "argocd-cm").await?;
        let params = config_map(&client, &ns, "argocd-cmd-params-cm").await?;
        let settings = effective_settings(settings, &params, &argocd_cm);
        let health = HealthConfig::from_config_map(&argocd_cm)
            .map_err(config_err("resource.customizations.health"))?;
        let ignore = IgnoreRules::from_argocd_cm(&argocd_cm)
            .map_err(config_err("resource.customizations.ignoreDifferences"))?;
        let filter = ResourceFilter::from_config_map(&argocd_cm)
            .map_err(config_err("resource.exclusions"))?;
        let metrics = ControllerMetrics::register(&registry).map_err(StartError::Metrics)?;
        let cache_metrics = CacheMetrics::register(&registry).map_err(StartError::Metrics)?;
        let queue_metrics = QueueMetrics::register(&registry).map_err(StartError::Metrics)?;
        let refresh_queue = WorkQueue::new(
            REFRESH_QUEUE,
            RateLimiter::default(),
            Some(queue_metrics.clone()),
        );
        let operation_queue =
            WorkQueue::new(OPERATION_QUEUE, RateLimiter::default(), Some(queue_metrics));
        let sink = Arc::new(QueueSink {
            queue: refresh_queue.clone(),
            namespace: ns.clone(),
        });
        let clusters = ClusterRegistry::new(
            client.clone(),
            CacheSettings {
                tracking: settings.tracking,
                label_key: settings.label_key.clone(),
                filter,
            },
            cache_metrics,
            sink,
        );
        let (apps, app_writer) = reflector::store::<Application>();
        let (projects, project_writer) = reflector::store::<AppProject>();
        let default_diff = Arc::new(
            DiffConfig::default()
                .with_ignore(ignore)
                .with_manager(settings.field_manager.clone()),
        );
        let apply_log = match &settings.apply_log {
            Some(path) => Some(Arc::new(
                crate::apply_log::ApplyLog::open(path, &settings.replica_id)
                    .map_err(|source| StartError::ApplyLog { source })?,
            )),
            None => None,
        };
        let shared = Arc::new(Shared {
            apply_log,
            settings,
            client: client.clone(),
            apps,
            projects,
            clusters,
            repos: RepoSecrets::default(),
            refs_freshness: RefsFreshness::default(),
            repo,
            health: Arc::new(HealthAssessor::new(health)),
            argocd_cm,
            default_diff,
            app_diff: Mutex::new(HashMap::new()),
            refresh_queue,
            operation_queue,
            metrics,
            inflight: Mutex::new(HashMap::new()),
            hard_refresh: Mutex::new(HashMap::new()),
            refresh_requests: Default::default(),
            takeovers: Default::default(),
            fence,
        });
        let mut tasks = vec![
            tokio::spawn(watch_apps(shared.clone(), app_writer)),
            tokio::spawn(watch_projects(shared.clone(), project_writer)),
            tokio::spawn(watch_secrets(shared.clone())),
        ];
        let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let _ = shared.apps.wait_until_ready().await;
            let _ = shared.projects.wait_until_ready().await;
        })
        .await;
        if ready.is_err() {
            tracing::warn!("application stores not ready after 60s; starting workers anyway");
        }
        for _ in 0..shared.settings.status_processors {
            tasks.push(tokio::spawn(refresh_worker(shared.clone())));
        }
        for _ in 0..shared.settings.operation_processors {
            tasks.push(tokio::spawn(operation_worker(shared.clone())));
        }
        tracing::info!(
            namespace = %shared.settings.namespace,
            status_processors = shared.settings.status_processors,
            operation_processors = shared.settings.operation_processors,
            "controller started"
        );
        Ok(Controller { shared, tasks })
    }

    /// The clusters (with app counts) the fleet's shard manager assigns.
    pub fn cluster_source(&self) -> Arc<dyn keelson_sharding::manager::ClusterSource> {
        Arc::new(crate::fleet::FleetClusters(Arc::downgrade(&self.shared)))
    }

    /// Follows the fleet's ownership: caches of clusters no longer held stop, apps of
    /// newly held units are refreshed (and their operations resumed).
    pub fn follow_ownership(&mut self, ownership: Arc<keelson_sharding::ownership::Ownership>) {
        self.tasks.push(tokio::spawn(crate::fleet::follow_ownership(
            self.shared.clone(),
            ownership,
        )));
    }

    /// The effective settings (flags merged with argocd-cmd-params-cm / argocd-cm).
    pub fn settings(&self) -> &ControllerSettings {
        &self.shared.settings
    }

    /// A handle for the refresh endpoint.
    pub fn refresh_handle(&self) -> crate::refresh_requests::RefreshHandle {
        crate::refresh_requests::RefreshHandle(Arc::downgrade(&self.shared))
    }

    /// Requests a refresh of every app (e.g. after the set of owned units changed).
    pub fn refresh_all(&self) {
        enqueue_all(&self.shared);
    }

    /// The refresh queue (for tests and the demo's progress display).
    pub fn apps(&self) -> Vec<Arc<Application>> {
        self.shared.apps.state()
    }

    /// Stops watchers and workers.
    pub async fn shutdown(self) {
        self.shared.refresh_queue.shut_down();
        self.shared.operation_queue.shut_down();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn enqueue_all(shared: &Shared) {
    for app in shared.apps.state() {
        let key = app_key(
            app.metadata.namespace.as_deref().unwrap_or_default(),
            app.metadata.name.as_deref().unwrap_or_default(),
        );
        shared.refresh_queue.add(key);
    }
}

async fn refresh_worker(shared: Arc<Shared>) {
    while let Some(key) = shared.refresh_queue.get().await {
        let s = shared.clone();
        let k = key.clone();
        // A separate task so that a panic in one app's refresh cannot stop the worker.
        if let Err(e) = tokio::spawn(async move { crate::refresh::refresh_app(&s, &k).await }).await
        {
            tracing::error!(app = %key, error = %e, "refresh panicked");
        }
        shared.refresh_queue.done(&key);
    }
}

async fn operation_worker(shared: Arc<Shared>) {
    while let Some(key) = shared.operation_queue.get().await {
        let s = shared.clone();
        let k = key.clone();
        if let Err(e) =
            tokio::spawn(async move { crate::operation::process_operation(&s, &k).await }).await
        {
            tracing::error!(app = %key, error = %e, "operation panicked");
        }
        shared.operation_queue.done(&key);
    }
}

/// What of an Application makes a refresh worthwhile when it changes (status writes
/// by the controller itself are left out so they do not loop). The refresh annotation
/// is left out too: its presence asks for a refresh on its own ([`refresh_requested`]),
/// and its removal by the controller must not cause a second one.
fn fingerprint(app: &Application) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&app.spec)
        .unwrap_or_default()
        .hash(&mut h);
    serde_json::to_string(&app.operation)
        .unwrap_or_default()
        .hash(&mut h);
    if let Some(annotations) = &app.metadata.annotations {
        annotations
            .iter()
            .filter(|(k, _)| k.as_str() != REFRESH)
            .for_each(|kv| kv.hash(&mut h));
    }
    app.metadata.deletion_timestamp.is_some().hash(&mut h);
    app.metadata.finalizers.hash(&mut h);
    app.status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .and_then(|o| o.phase)
        .map(|p| p.to_string())
        .hash(&mut h);
    h.finish()
}

/// Whether someone asked for a refresh with the `argocd.argoproj.io/refresh` annotation.
fn refresh_requested(app: &Application) -> bool {
    app.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(REFRESH))
}

fn needs_operation(app: &Application) -> bool {
    app.operation.is_some()
        || matches!(
            app.status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .and_then(|o| o.phase),
            Some(OperationPhase::Running | OperationPhase::Terminating)
        )
}

/// What a (re)list of the apps found, acted on once it is complete: the reflector
/// swaps its store only at `InitDone`, so a refresh queued during the list would read
/// the app as it was before (and, say, miss the refresh annotation it came for).
#[derive(Default)]
struct Relist {
    listed: HashSet<AppKey>,
    refresh: Vec<AppKey>,
    operate: Vec<AppKey>,
}

async fn watch_apps(shared: Arc<Shared>, writer: reflector::store::Writer<Application>) {
    let api: Api<Application> = Api::namespaced(shared.client.clone(), &shared.settings.namespace);
    let mut seen: HashMap<AppKey, u64> = HashMap::new();
    let mut relist = Relist::default();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "application watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(app) => {
                let (key, refresh, operate) = app_event(&mut seen, &app);
                if refresh {
                    shared.refresh_queue.add(key.clone());
                }
                if operate {
                    shared.operation_queue.add(key);
                }
            }
            watcher::Event::InitApply(app) => {
                let (key, refresh, operate) = app_event(&mut seen, &app);
                if refresh {
                    relist.refresh.push(key.clone());
                }
                if operate {
                    relist.operate.push(key.clone());
                }
                relist.listed.insert(key);
            }
            watcher::Event::Delete(app) => {
                let key = app_key(
                    app.metadata.namespace.as_deref().unwrap_or_default(),
                    app.metadata.name.as_deref().unwrap_or_default(),
                );
                seen.remove(&key);
                shared.refresh_queue.add(key);
            }
            watcher::Event::Init => relist = Relist::default(),
            watcher::Event::InitDone => {
                let done = std::mem::take(&mut relist);
                // Apps gone while the watch was down: their refresh clears their metrics.
                let gone: Vec<AppKey> = seen
                    .keys()
                    .filter(|k| !done.listed.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    seen.remove(&key);
                    shared.refresh_queue.add(key);
                }
                done.refresh
                    .into_iter()
                    .for_each(|k| shared.refresh_queue.add(k));
                done.operate
                    .into_iter()
                    .for_each(|k| shared.operation_queue.add(k));
            }
        }
    }
}

/// An app as the watch delivered it: its key, whether it needs a refresh and whether it
/// needs its operation looked at.
fn app_event(seen: &mut HashMap<AppKey, u64>, app: &Application) -> (AppKey, bool, bool) {
    let key = app_key(
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default(),
    );
    let fp = fingerprint(app);
    let refresh = seen.insert(key.clone(), fp) != Some(fp) || refresh_requested(app);
    (key, refresh, needs_operation(app))
}

async fn watch_projects(shared: Arc<Shared>, writer: reflector::store::Writer<AppProject>) {
    let api: Api<AppProject> = Api::namespaced(shared.client.clone(), &shared.settings.namespace);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    let mut initialised = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => initialised = true,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) if initialised => {
                enqueue_all(&shared);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "appproject watch failed; retrying"),
        }
    }
}

async fn watch_secrets(shared: Arc<Shared>) {
    let api: Api<Secret> = Api::namespaced(shared.client.clone(), &shared.settings.namespace);
    let stream = watcher(api, watcher::Config::default().labels(SECRET_TYPE)).default_backoff();
    futures::pin_mut!(stream);
    let mut initialised = false;
    // A change seen during a (re)list: every app is looked at once the list is done. A
    // periodic re-list of 500 unchanged cluster Secrets must not queue every app 500 times.
    let mut changed_in_list = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(s)) => {
                if take_secret(&shared, &s) {
                    enqueue_all(&shared);
                }
            }
            Ok(watcher::Event::InitApply(s)) => changed_in_list |= take_secret(&shared, &s),
            Ok(watcher::Event::Delete(s)) => {
                let name = secret_key(&s);
                shared.clusters.remove_secret(&name);
                shared.repos.remove(&name);
                enqueue_all(&shared);
            }
            Ok(watcher::Event::InitDone) => {
                if !initialised || changed_in_list {
                    enqueue_all(&shared);
                }
                initialised = true;
                changed_in_list = false;
            }
            Ok(watcher::Event::Init) => {}
            Err(e) => tracing::warn!(error = %e, "secret watch failed; retrying"),
        }
    }
}

/// Registers a cluster or repository Secret; returns whether anything changed.
fn take_secret(shared: &Shared, s: &Secret) -> bool {
    let is_cluster = s
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SECRET_TYPE))
        .is_some_and(|t| t == SECRET_TYPE_CLUSTER);
    if !is_cluster {
        return shared.repos.upsert(s);
    }
    shared.clusters.upsert_secret(s).unwrap_or_else(|e| {
        tracing::warn!(secret = %secret_key(s), error = %e, "ignoring cluster secret");
        false
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn app(annotations: &[(&str, &str)]) -> Application {
        let mut app: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "a", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {"repoURL": "https://example.com/r.git", "path": "p"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "d"}
            }
        }))
        .unwrap();
        app.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        app
    }

    #[test]
    fn the_refresh_annotation_asks_once_and_its_removal_does_not_ask_again() {
        let plain = app(&[("team", "a")]);
        let asked = app(&[("team", "a"), (REFRESH, "normal")]);
        assert_eq!(fingerprint(&plain), fingerprint(&asked));
        assert!(refresh_requested(&asked));
        assert!(!refresh_requested(&plain));
        assert_ne!(fingerprint(&plain), fingerprint(&app(&[("team", "b")])));
    }
}
