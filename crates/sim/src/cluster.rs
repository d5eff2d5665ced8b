//! One simulated cluster: its identity and token, the lock-protected state (store,
//! served resource types, service allocator) and the fault-injection settings.

use crate::defaults::ServiceAllocator;
use crate::faults::Faults;
use crate::list_snapshot::ListSnapshots;
use crate::resources::{self, ResourceType};
use crate::store::{GroupResource, Store};
use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of a cluster's store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Events kept for watch resumption; older versions get 410 Gone.
    pub watch_history: usize,
    /// Events buffered per watcher before it is cut off (it then resumes).
    pub watch_buffer: usize,
    /// Events younger than this are kept beyond `watch_history` (the real API server's
    /// watch cache keeps 75 s).
    pub watch_window: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            watch_history: 2_000,
            watch_buffer: 4_096,
            watch_window: Duration::from_secs(75),
        }
    }
}

/// A simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Name, also the path segment of its base URL.
    pub name: String,
    /// The bearer token clients must present.
    pub token: String,
    /// Fault-injection settings.
    pub faults: Faults,
    state: Mutex<ClusterState>,
}

/// The mutable state of a cluster, behind one lock.
#[derive(Debug)]
pub struct ClusterState {
    /// The objects.
    pub store: Store,
    /// ClusterIP and NodePort allocation.
    pub alloc: ServiceAllocator,
    /// Paginated lists in progress.
    pub lists: ListSnapshots,
    types: Vec<Arc<ResourceType>>,
    by_path: HashMap<(String, String, String), Arc<ResourceType>>,
}

impl Cluster {
    /// A new, empty cluster with the default namespaces.
    pub fn new(name: &str, token: &str, limits: StoreLimits) -> Arc<Self> {
        let mut state = ClusterState {
            store: Store::new(limits.watch_history, limits.watch_buffer)
                .with_history_window(limits.watch_window),
            alloc: ServiceAllocator::new(),
            lists: ListSnapshots::default(),
            types: Vec::new(),
            by_path: HashMap::new(),
        };
        for rt in resources::builtin_types() {
            state.add_type(rt);
        }
        let cluster = Arc::new(Self {
            name: name.to_owned(),
            token: token.to_owned(),
            faults: Faults::default(),
            state: Mutex::new(state),
        });
        cluster.bootstrap();
        cluster
    }

    /// Locks the cluster state.
    pub fn lock(&self) -> MutexGuard<'_, ClusterState> {
        self.state.lock()
    }

    fn bootstrap(&self) {
        let opts = crate::verbs::WriteOptions::system("keelson-sim");
        let (Some(namespaces), Some(services)) = ({
            let state = self.lock();
            (
                state.find("", "v1", "namespaces"),
                state.find("", "v1", "services"),
            )
        }) else {
            return;
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = crate::verbs::create(self, &namespaces, None, body, &opts);
        }
        let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}});
        let _ = crate::verbs::create(self, &services, Some("default"), svc, &opts);
        self.lock().store.compact();
    }
}

impl ClusterState {
    /// The served resource types, in discovery order.
    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The type served at group/version/plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// The type of an `apiVersion` and kind (for owner references).
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// Any served version of a group/resource (the first registered).
    pub fn find_resource(&self, resource: &GroupResource) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == resource.group && t.plural == resource.resource)
            .cloned()
    }

    fn add_type(&mut self, rt: Arc<ResourceType>) {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        self.types
            .retain(|t| !(t.group == rt.group && t.version == rt.version && t.plural == rt.plural));
        self.by_path.insert(key, Arc::clone(&rt));
        self.types.push(rt);
    }

    /// Serves (or re-serves) the kinds a CRD defines; returns the group/resources that
    /// stopped being served.
    pub fn register_crd(&mut self, crd: &Value) -> Vec<GroupResource> {
        let new_types = resources::crd_types(crd);
        let group = crd["spec"]["group"].as_str().unwrap_or_default().to_owned();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.unregister(&group, &plural);
        let served = !new_types.is_empty();
        for rt in new_types {
            self.add_type(rt);
        }
        if served {
            Vec::new()
        } else {
            vec![GroupResource {
                group,
                resource: plural,
            }]
        }
    }

    /// Stops serving a custom resource.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.is_custom() && t.group == group && t.plural == plural));
        self.by_path
            .retain(|(g, _, p), t| !(t.is_custom() && g == group && p == plural));
    }
}
