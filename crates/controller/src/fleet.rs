//! The controller's side of the sharded fleet: a fence backed by the shard manager's
//! ownership, the cluster list (with app counts) the manager assigns, and following
//! ownership changes — caches of clusters no longer held are stopped and every app is
//! re-examined.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use keelson_sharding::manager::ClusterSource;
use keelson_sharding::ownership::Ownership;
use keelson_sharding::unit::{ClusterInfo, UnitId, spread_hash};

use crate::clusters::IN_CLUSTER_SERVER;
use crate::fence::AppFence;
use crate::manifests::now_unix_ms;
use crate::shared::{AppKey, Shared, app_key};

/// Annotation on a cluster Secret splitting the cluster into this many units.
pub const SHARD_BUCKETS_ANNOTATION: &str = "keelson.io/shard-buckets";

/// A fence over the fleet's claims.
#[derive(Debug, Clone)]
pub struct ShardFence(pub Arc<Ownership>);

impl AppFence for ShardFence {
    fn owns(&self, server: &str, app_key: &str) -> bool {
        self.0.owns(server, app_key)
    }

    fn begin_step(&self, server: &str, app_key: &str) -> Option<Box<dyn Any + Send>> {
        self.0
            .begin_step(server, app_key)
            .map(|g| Box::new(g) as Box<dyn Any + Send>)
    }

    fn unit_name(&self, server: &str, app_key: &str) -> String {
        self.0.unit_of(server, app_key).to_string()
    }
}

/// The clusters known to a controller, with how many apps target each.
pub(crate) struct FleetClusters(pub Weak<Shared>);

impl ClusterSource for FleetClusters {
    fn clusters(&self) -> Vec<ClusterInfo> {
        let Some(shared) = self.0.upgrade() else {
            return Vec::new();
        };
        let mut hashes: HashMap<String, Vec<u64>> = HashMap::new();
        for app in shared.apps.state() {
            if let Ok(d) = shared.clusters.resolve(&app.spec.destination) {
                let key = app_key(
                    app.metadata.namespace.as_deref().unwrap_or_default(),
                    app.metadata.name.as_deref().unwrap_or_default(),
                );
                hashes.entry(d.server).or_default().push(spread_hash(&key));
            }
        }
        let mut out = Vec::new();
        for spec in shared.clusters.specs() {
            let server = spec.server.trim_end_matches('/').to_owned();
            let app_hashes = hashes.remove(&server).unwrap_or_default();
            out.push(ClusterInfo {
                apps: app_hashes.len() as u64,
                app_hashes,
                buckets: spec
                    .annotations
                    .get(SHARD_BUCKETS_ANNOTATION)
                    .and_then(|v| v.trim().parse().ok())
                    .filter(|k| *k > 1),
                pinned_shard: spec.shard,
                id: spec.secret.clone(),
                server,
            });
        }
        if let Some(app_hashes) = hashes.remove(IN_CLUSTER_SERVER) {
            out.push(ClusterInfo {
                server: IN_CLUSTER_SERVER.to_owned(),
                apps: app_hashes.len() as u64,
                app_hashes,
                ..ClusterInfo::default()
            });
        }
        out
    }
}

/// Follows ownership changes: starts the caches of newly held clusters at once, stops
/// those no longer held, and re-examines only the apps of newly held units (their
/// operations resume too); apps of units held before are unaffected. Each gained unit's
/// takeover progress is tracked until all its apps were compared.
pub(crate) async fn follow_ownership(shared: Arc<Shared>, ownership: Arc<Ownership>) {
    let mut rx = ownership.subscribe();
    let mut before: BTreeSet<UnitId> = BTreeSet::new();
    while rx.changed().await.is_ok() {
        let held = ownership.held_units();
        let servers: BTreeSet<String> = held.iter().map(|u| u.server.clone()).collect();
        shared.clusters.retain(|server| servers.contains(server));
        for server in &servers {
            if let Err(e) = shared.clusters.entry(server) {
                tracing::warn!(%server, error = %e, "starting the cache of a held cluster failed");
            }
        }
        let gained: BTreeSet<&UnitId> = held.difference(&before).collect();
        tracing::info!(
            units = held.len(),
            gained = gained.len(),
            "ownership changed"
        );
        // Registered before any refresh is queued, so none can finish unnoticed.
        let mut gained_apps: BTreeMap<UnitId, Vec<AppKey>> =
            gained.iter().map(|u| ((*u).clone(), Vec::new())).collect();
        let mut operations = Vec::new();
        if !gained.is_empty() {
            for app in shared.apps.state() {
                let key = app_key(
                    app.metadata.namespace.as_deref().unwrap_or_default(),
                    app.metadata.name.as_deref().unwrap_or_default(),
                );
                let Ok(d) = shared.clusters.resolve(&app.spec.destination) else {
                    continue;
                };
                let Some(keys) = gained_apps.get_mut(&ownership.unit_of(&d.server, &key)) else {
                    continue;
                };
                if app.operation.is_some() {
                    operations.push(key.clone());
                }
                keys.push(key);
            }
        }
        let refreshes: Vec<AppKey> = gained_apps.values().flatten().cloned().collect();
        shared.takeovers.follow(&held, gained_apps, now_unix_ms());
        shared
            .metrics
            .set_units_reconciling(shared.takeovers.reconciling());
        for key in operations {
            shared.operation_queue.add(key);
        }
        for key in refreshes {
            shared.refresh_queue.add(key);
        }
        before = held;
    }
}
