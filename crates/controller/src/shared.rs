//! The state every worker of one controller shares: clients, stores, queues, caches,
//! settings and metrics. Built once by [`crate::Controller::start`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use keelson_diff::{DiffConfig, IgnoreRules};
use keelson_health::HealthAssessor;
use keelson_model::{AppProject, Application};
use keelson_repo_server::pool::RepoClient;
use keelson_workqueue::WorkQueue;
use kube::runtime::reflector::{ObjectRef, Store};
use parking_lot::Mutex;

use crate::clusters::ClusterRegistry;
use crate::fence::AppFence;
use crate::manifests::{RefsFreshness, RepoSecrets};
use crate::metrics::ControllerMetrics;
use crate::operation::InFlight;
use crate::settings::ControllerSettings;

/// `namespace/name` of an Application.
pub type AppKey = Arc<str>;

/// Builds an [`AppKey`].
pub fn app_key(namespace: &str, name: &str) -> AppKey {
    Arc::from(format!("{namespace}/{name}"))
}

/// Splits an [`AppKey`].
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Shared controller state.
pub struct Shared {
    /// Settings.
    pub settings: ControllerSettings,
    /// Management cluster client.
    pub client: kube::Client,
    /// Applications of the control namespace.
    pub apps: Store<Application>,
    /// AppProjects of the control namespace.
    pub projects: Store<AppProject>,
    /// Destination clusters.
    pub clusters: ClusterRegistry,
    /// Repository credentials.
    pub repos: RepoSecrets,
    /// Repo-server pool.
    pub repo: RepoClient,
    /// When each repository's branches were last resolved now.
    pub refs_freshness: RefsFreshness,
    /// Health assessment with argocd-cm overrides.
    pub health: Arc<HealthAssessor>,
    /// argocd-cm data (ignoreDifferences rules are read from it per app).
    pub argocd_cm: BTreeMap<String, String>,
    /// Diff settings shared by apps without their own ignoreDifferences.
    pub default_diff: Arc<DiffConfig>,
    /// Per-app diff settings, with the JSON of the app's ignoreDifferences they came from.
    pub app_diff: Mutex<HashMap<AppKey, (String, Arc<DiffConfig>)>>,
    /// Refresh (status) queue.
    pub refresh_queue: WorkQueue<AppKey>,
    /// Operation queue.
    pub operation_queue: WorkQueue<AppKey>,
    /// Metrics.
    pub metrics: Arc<ControllerMetrics>,
    /// Operations being executed by this controller.
    pub inflight: Mutex<HashMap<AppKey, InFlight>>,
    /// Apps whose refresh was requested through the refresh endpoint.
    pub refresh_requests: crate::refresh_requests::RefreshRequests,
    /// Takeover progress of the units this replica gained.
    pub takeovers: crate::takeover::Takeovers,
    /// Apps for which a hard refresh (no manifest cache) was requested.
    pub hard_refresh: Mutex<HashMap<AppKey, ()>>,
    /// Decides whether this replica may work on an app (sharding).
    pub fence: Arc<dyn AppFence>,
    /// Log of every write to destination clusters (the fleet's safety checker).
    pub apply_log: Option<Arc<crate::apply_log::ApplyLog>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("namespace", &self.settings.namespace)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The app from the store.
    pub fn app(&self, key: &str) -> Option<Arc<Application>> {
        let (ns, name) = split_key(key);
        self.apps.get(&ObjectRef::new(name).within(ns))
    }

    /// The project, or the built-in permissive `default` project when `default` is absent.
    pub fn project(&self, name: &str) -> Option<Arc<AppProject>> {
        let ns = &self.settings.namespace;
        match self.projects.get(&ObjectRef::new(name).within(ns)) {
            Some(p) => Some(p),
            None if name == "default" => {
                Some(Arc::new(keelson_reconcile::project::default_project(ns)))
            }
            None => None,
        }
    }

    /// Diff settings for an app (its ignoreDifferences plus argocd-cm's).
    pub fn diff_config(&self, key: &AppKey, app: &Application) -> Result<Arc<DiffConfig>, String> {
        let Some(entries) = app
            .spec
            .ignore_differences
            .as_ref()
            .filter(|e| !e.is_empty())
        else {
            return Ok(self.default_diff.clone());
        };
        let json = serde_json::to_string(entries).unwrap_or_default();
        let mut cache = self.app_diff.lock();
        if let Some((seen, config)) = cache.get(key)
            && *seen == json
        {
            return Ok(config.clone());
        }
        let rules = IgnoreRules::new(entries, &self.argocd_cm).map_err(|e| e.to_string())?;
        let config = Arc::new(
            DiffConfig::default()
                .with_ignore(rules)
                .with_manager(self.settings.field_manager.clone()),
        );
        cache.insert(key.clone(), (json, config.clone()));
        Ok(config)
    }
}
