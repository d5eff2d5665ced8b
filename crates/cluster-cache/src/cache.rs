//! `ClusterCache`: one cluster's tasks (supervisor: discovery and re-discovery; one watch
//! task per resource; one dispatcher of change notifications) and its read API.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keelson_model::ResourceKey;
use kube::Client;
use kube::discovery::ApiResource;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::change::{AppChange, ChangeKind, ChangeSink};
use crate::config::ClusterCacheConfig;
use crate::discovery::{WatchedResource, discover};
use crate::error::ClusterCacheError;
use crate::metrics::{CacheMetrics, ClusterSource, Sample};
use crate::status::{ClusterCacheStatus, StatusCell};
use crate::store::{LiveObject, Record, Store, TreeNode};

/// State shared by one cluster's tasks and readers.
pub(crate) struct Shared {
    pub config: ClusterCacheConfig,
    pub client: Client,
    pub store: RwLock<Store>,
    pub status: StatusCell,
    metrics: Arc<CacheMetrics>,
    changes: mpsc::UnboundedSender<AppChange>,
    synced: watch::Sender<bool>,
    ever_synced: AtomicBool,
    kinds: Mutex<HashSet<(String, String)>>,
}

impl ClusterSource for Shared {
    fn sample(&self) -> Sample {
        let st = self.status.snapshot(self.store.read().len());
        Sample {
            name: self.config.name.to_string(),
            objects: st.objects,
            api_resources: st.api_resources,
            age_seconds: st
                .last_sync
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0),
            connected: st.connection == crate::status::ConnectionState::Connected,
            k8s_version: st.server_version.unwrap_or_default(),
        }
    }
}

impl Shared {
    pub fn notify_enabled(&self) -> bool {
        self.ever_synced.load(Ordering::Relaxed)
    }

    /// Remembers a watched kind, so that its event series is removed when the cache stops.
    pub fn register_kind(&self, ar: &ApiResource) {
        self.kinds
            .lock()
            .insert((ar.group.clone(), ar.kind.clone()));
    }

    pub fn count_event(&self, ar: &ApiResource) {
        self.status.event();
        self.metrics.event(&self.config.server, &ar.group, &ar.kind);
    }

    pub fn watch_failed(&self, ar: &ApiResource, err: &kube::runtime::watcher::Error) {
        use kube::runtime::watcher::Error as W;
        let resource_level = match err {
            W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => {
                matches!(e, kube::Error::Api(s) if s.code < 500)
            }
            W::WatchError(_) | W::NoResourceVersion => true,
        };
        tracing::debug!(cluster = %self.config.name, group = %ar.group, kind = %ar.kind, error = %err, "watch error");
        if !resource_level {
            self.status
                .failed(format!("watching {}/{}: {err}", ar.group, ar.kind));
        }
    }

    pub fn resource_synced(&self) {
        if self.status.resource_synced() {
            self.ever_synced.store(true, Ordering::Relaxed);
            let _ = self.synced.send(true);
        }
    }

    fn send(&self, app: Arc<str>, key: &ResourceKey, kind: ChangeKind) {
        let _ = self.changes.send(AppChange {
            cluster: self.config.name.clone(),
            app,
            key: key.clone(),
            kind,
        });
    }

    pub fn upsert(&self, key: ResourceKey, record: Record, notify: bool) {
        let mut store = self.store.write();
        let up = store.upsert(key.clone(), record);
        if !notify || !up.changed {
            return;
        }
        let app = store.root_app_of(&key);
        drop(store);
        let kind = if up.existed {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        if let Some(old) = up.old_app.filter(|o| app.as_ref() != Some(o)) {
            self.send(old, &key, ChangeKind::Modified);
        }
        if let Some(app) = app {
            self.send(app, &key, kind);
        }
    }

    pub fn delete(&self, key: &ResourceKey) {
        let mut store = self.store.write();
        let app = store.root_app_of(key);
        let removed = store.remove(key).is_some();
        drop(store);
        if let (true, Some(app)) = (removed, app) {
            self.send(app, key, ChangeKind::Deleted);
        }
    }

    pub fn prune_kind(
        &self,
        group: &str,
        kind: &str,
        keep: Option<&HashSet<ResourceKey>>,
        notify: bool,
    ) {
        let gone = self.store.read().kind_keys_except(group, kind, keep);
        if notify {
            for key in gone {
                self.delete(&key);
            }
        } else {
            let mut store = self.store.write();
            for key in gone {
                store.remove(&key);
            }
        }
    }
}

/// The live-state cache of one target cluster.
pub struct ClusterCache {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    watches: Arc<Mutex<HashMap<String, JoinHandle<()>>>>,
    synced: watch::Receiver<bool>,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCache")
            .field("cluster", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

type Watches = Arc<Mutex<HashMap<String, JoinHandle<()>>>>;

impl ClusterCache {
    /// Starts the cache's tasks (must be called inside a tokio runtime).
    pub fn start(
        client: Client,
        config: ClusterCacheConfig,
        metrics: Arc<CacheMetrics>,
        sink: Arc<dyn ChangeSink>,
    ) -> ClusterCache {
        let (tx, mut rx) = mpsc::unbounded_channel::<AppChange>();
        let (synced_tx, synced) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            client,
            store: RwLock::new(Store::default()),
            status: StatusCell::default(),
            metrics: metrics.clone(),
            changes: tx,
            synced: synced_tx,
            ever_synced: AtomicBool::new(false),
            kinds: Mutex::new(HashSet::new()),
        });
        let weak: std::sync::Weak<Shared> = Arc::downgrade(&shared);
        metrics.add_cluster(&shared.config.server, weak);
        let dispatcher = tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                sink.on_change(change);
            }
        });
        let watches: Watches = Arc::default();
        let supervisor = tokio::spawn(supervise(shared.clone(), watches.clone()));
        ClusterCache {
            shared,
            tasks: vec![supervisor, dispatcher],
            watches,
            synced,
        }
    }

    /// Stops every task and removes the cluster's metric series.
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for (_, t) in self.watches.lock().drain() {
            t.abort();
        }
        let kinds: Vec<(String, String)> = self.shared.kinds.lock().iter().cloned().collect();
        self.shared
            .metrics
            .remove_cluster(&self.shared.config.server, &kinds);
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Health of the cache.
    pub fn status(&self) -> ClusterCacheStatus {
        let objects = self.shared.store.read().len();
        self.shared.status.snapshot(objects)
    }

    /// Waits until every watched resource has completed its first list.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), ClusterCacheError> {
        let mut rx = self.synced.clone();
        let done = tokio::time::timeout(timeout, rx.wait_for(|s| *s)).await;
        match done {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ClusterCacheError::Stopped(self.name().to_string())),
            Err(_) => Err(ClusterCacheError::SyncTimeout {
                cluster: self.name().to_string(),
                timeout,
            }),
        }
    }

    /// Objects tracked by `app` (whole objects).
    pub fn app_objects(&self, app: &str) -> Vec<LiveObject> {
        let snaps = self.shared.store.read().app_objects(app);
        snaps.into_iter().map(|s| s.into_live()).collect()
    }

    /// Objects whose owner references name `uid`.
    pub fn children(&self, uid: &str) -> Vec<LiveObject> {
        let snaps = self.shared.store.read().children(uid);
        snaps.into_iter().map(|s| s.into_live()).collect()
    }

    /// Objects in a namespace.
    pub fn namespace_objects(&self, namespace: &str) -> Vec<LiveObject> {
        let snaps = self.shared.store.read().namespace_objects(namespace);
        snaps.into_iter().map(|s| s.into_live()).collect()
    }

    /// One object.
    pub fn get(&self, key: &ResourceKey) -> Option<LiveObject> {
        let snap = self.shared.store.read().get(key);
        snap.map(|s| s.into_live())
    }

    /// The app's tracked objects and their descendants through owner references.
    pub fn resource_tree(&self, app: &str) -> Vec<TreeNode> {
        let nodes = self.shared.store.read().tree(app);
        nodes
            .into_iter()
            .map(|(s, parents)| TreeNode {
                live: s.into_live(),
                parents,
            })
            .collect()
    }
}

impl Drop for ClusterCache {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Discovers (retrying with backoff), keeps one watch task per resource, and re-discovers
/// when CRDs change.
async fn supervise(shared: Arc<Shared>, watches: Watches) {
    let rediscover = Arc::new(Notify::new());
    let mut delay = Duration::from_millis(500);
    loop {
        match discover(&shared.client, &shared.config).await {
            Ok((resources, version)) => {
                delay = Duration::from_millis(500);
                shared.status.server_version(version);
                shared.status.connected();
                reconcile_watches(&shared, &watches, resources, &rediscover);
                rediscover.notified().await;
                tokio::time::sleep(shared.config.rediscover_delay).await;
            }
            Err(e) => {
                tracing::warn!(cluster = %shared.config.name, error = %e, "discovery failed");
                shared.status.failed(error_chain(&e));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(shared.config.max_retry_delay);
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn watch_id(w: &WatchedResource) -> String {
    let (g, k, v, p, s) = w.id();
    format!("{g}/{v}/{k}/{p}/{s}")
}

fn reconcile_watches(
    shared: &Arc<Shared>,
    watches: &Watches,
    resources: Vec<WatchedResource>,
    rediscover: &Arc<Notify>,
) {
    let mut map = watches.lock();
    let wanted: HashMap<String, WatchedResource> =
        resources.into_iter().map(|w| (watch_id(&w), w)).collect();
    let removed: Vec<String> = map
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .cloned()
        .collect();
    for id in removed {
        if let Some(task) = map.remove(&id) {
            task.abort();
        }
        let mut parts = id.split('/');
        if let (Some(g), Some(_), Some(k)) = (parts.next(), parts.next(), parts.next()) {
            shared.prune_kind(g, k, None, true);
        }
    }
    let new: Vec<(String, WatchedResource)> = wanted
        .into_iter()
        .filter(|(id, _)| !map.contains_key(id))
        .collect();
    let total = map.len() + new.len();
    let already = shared.ever_synced.load(Ordering::Relaxed);
    // Re-discovery adds kinds to a synced cache without making it unsynced.
    if shared.status.resources(total, new.len(), already) && !already {
        shared.ever_synced.store(true, Ordering::Relaxed);
        let _ = shared.synced.send(true);
    }
    for (id, w) in new {
        let task = tokio::spawn(crate::watch::run(shared.clone(), w, rediscover.clone()));
        map.insert(id, task);
    }
}
