//! Gathering an app's state: project and spec checks, destination resolution, desired
//! objects from the repo-server, live objects from the cluster cache, and the comparison.
//! Shared by refreshes and sync operations.

use std::sync::Arc;

use keelson_cluster_cache::ConnectionState;
use keelson_model::application_status::ApplicationCondition;
use keelson_model::{AppProject, Application, ResourceKey};
use keelson_reconcile::compare::{CompareInput, Comparison, compare, orphaned_resources};
use keelson_reconcile::project::{check_application, project_missing_condition};
use serde_json::Value;

use crate::clusters::{ClusterEntry, Destination};
use crate::manifests::{CacheUse, Desired, RenderContext, fetch_desired};
use crate::shared::{AppKey, Shared};

/// Condition type of spec errors.
pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
/// Condition type of comparison errors.
pub const COMPARISON_ERROR: &str = "ComparisonError";

/// Everything known about an app after a successful comparison.
pub struct AppState {
    /// The project the app belongs to.
    pub project: Arc<AppProject>,
    /// Resolved destination.
    pub destination: Destination,
    /// The destination's cache and client.
    pub cluster: Arc<ClusterEntry>,
    /// Desired objects and resolved revisions.
    pub desired: Desired,
    /// The comparison.
    pub comparison: Comparison,
    /// Orphaned resources in the destination namespace, when the project monitors them.
    pub orphaned: Option<Vec<ResourceKey>>,
}

/// Why no comparison could be made.
#[derive(Debug, Clone)]
pub enum StateError {
    /// The spec or project forbids the app (InvalidSpecError conditions).
    Spec {
        /// Conditions.
        conditions: Vec<ApplicationCondition>,
        /// Destination, when it resolved.
        destination: Option<Destination>,
    },
    /// Desired or live state could not be read (a ComparisonError condition).
    Comparison {
        /// Message.
        message: String,
        /// Destination.
        destination: Option<Destination>,
        /// When to look at the app again.
        retry: Retry,
    },
}

/// When to compare an app again after its comparison failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// At the next resync (the failure is in the app, its source or its repo).
    AtResync,
    /// Shortly: the destination's cache is still filling.
    Soon,
    /// After a few seconds: the destination cluster failed. Its cache reconnects on its
    /// own but does not tell the apps it failed earlier, so they must ask again.
    ClusterDown,
    /// After a few seconds: the repo-server was unavailable, overloaded or too slow.
    RepoUnavailable,
}

fn condition(type_: &str, message: impl Into<String>) -> ApplicationCondition {
    ApplicationCondition {
        type_: type_.to_owned(),
        message: message.into(),
        last_transition_time: None,
    }
}

/// Validates the app against its spec rules and project; returns the project and the
/// resolved destination.
pub fn check_spec(
    shared: &Shared,
    app: &Application,
) -> Result<(Arc<AppProject>, Destination), StateError> {
    let spec_err = |conditions, destination| StateError::Spec {
        conditions,
        destination,
    };
    if let Err(e) = app.validate() {
        return Err(spec_err(
            vec![condition(INVALID_SPEC_ERROR, e.to_string())],
            None,
        ));
    }
    let project_name = app.spec.project_or_default();
    let Some(project) = shared.project(project_name) else {
        return Err(spec_err(
            vec![project_missing_condition(project_name)],
            None,
        ));
    };
    let destination = shared
        .clusters
        .resolve(&app.spec.destination)
        .map_err(|e| {
            spec_err(
                vec![condition(
                    INVALID_SPEC_ERROR,
                    format!(
                        "application destination spec is invalid: {}",
                        destination_message(&e)
                    ),
                )],
                None,
            )
        })?;
    let conditions = check_application(&project, app, &destination.server, Some(&destination.name));
    if conditions.iter().any(|c| c.type_ == INVALID_SPEC_ERROR) {
        return Err(spec_err(conditions, Some(destination)));
    }
    Ok((project, destination))
}

/// Argo CD's wording of a destination that does not resolve.
fn destination_message(e: &crate::error::ClusterError) -> String {
    use crate::error::ClusterError;
    match e {
        ClusterError::UnknownName { .. } | ClusterError::UnknownServer { .. } => {
            format!("unable to find destination server: {e}")
        }
        _ => e.to_string(),
    }
}

/// The destination's cache, if it is usable now.
fn ready_cluster(
    shared: &Shared,
    destination: &Destination,
) -> Result<Arc<ClusterEntry>, StateError> {
    let not_ready = |message: String, retry| StateError::Comparison {
        message,
        destination: Some(destination.clone()),
        retry,
    };
    let entry = shared
        .clusters
        .entry(&destination.server)
        .map_err(|e| not_ready(e.to_string(), Retry::AtResync))?;
    let status = entry.cache.status();
    if let ConnectionState::Failed(msg) = &status.connection {
        // Stale data must not be reported as the truth: once a request to the cluster
        // fails, its apps are Unknown until the cache reconnects.
        return Err(not_ready(
            format!("failed to sync cluster {}: {msg}", destination.server),
            Retry::ClusterDown,
        ));
    }
    if !status.synced {
        return Err(not_ready(
            format!("cluster {} cache is still syncing", destination.server),
            Retry::Soon,
        ));
    }
    Ok(entry)
}

/// Live objects for the comparison: those tracked by the app plus the live twin of
/// each desired object.
fn live_objects(
    entry: &ClusterEntry,
    instance: &str,
    desired: &[Value],
    dest_ns: &str,
) -> Vec<Value> {
    let mut live = entry.cache.app_objects(instance);
    let mut seen: std::collections::HashSet<ResourceKey> =
        live.iter().map(|l| l.key.clone()).collect();
    for obj in desired {
        let Some(key) = desired_key(obj, dest_ns) else {
            continue;
        };
        for candidate in [
            key.clone(),
            ResourceKey::new(
                key.group.clone(),
                key.kind.clone(),
                String::new(),
                key.name.clone(),
            ),
        ] {
            if seen.contains(&candidate) {
                break;
            }
            if let Some(found) = entry.cache.get(&candidate) {
                seen.insert(candidate);
                live.push(found);
                break;
            }
        }
    }
    live.into_iter().map(|l| l.object).collect()
}

/// The key of a desired object, with the destination namespace when it has none.
pub fn desired_key(obj: &Value, dest_ns: &str) -> Option<ResourceKey> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let meta = obj.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(dest_ns);
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    Some(ResourceKey::new(
        group.to_owned(),
        kind.to_owned(),
        ns.to_owned(),
        name.to_owned(),
    ))
}

/// Gathers and compares an app's state at `revisions` (None: the sources' target
/// revisions).
pub async fn load_state(
    shared: &Shared,
    key: &AppKey,
    app: &Application,
    revisions: Option<&[String]>,
    cache: CacheUse,
) -> Result<AppState, StateError> {
    let (project, destination) = check_spec(shared, app)?;
    let cluster = ready_cluster(shared, &destination)?;
    let comparison_err = |message: String| StateError::Comparison {
        message,
        destination: Some(destination.clone()),
        retry: Retry::AtResync,
    };
    let instance = app.metadata.name.as_deref().unwrap_or_default();
    let ctx = RenderContext {
        tracking: shared.settings.tracking,
        label_key: &shared.settings.label_key,
        instance,
        kube_version: &shared.settings.kube_version,
        cache,
        timeout: shared.settings.repo_timeout,
        freshness: &shared.refs_freshness,
    };
    let sources = app.spec.effective_sources();
    let desired = fetch_desired(&shared.repo, &shared.repos, app, &sources, revisions, &ctx)
        .await
        .map_err(|e| StateError::Comparison {
            message: format!("failed to load target state: {e}"),
            destination: Some(destination.clone()),
            retry: if e.is_transient() {
                Retry::RepoUnavailable
            } else {
                Retry::AtResync
            },
        })?;
    let dest_ns = app.spec.destination.namespace.clone().unwrap_or_default();
    let live = live_objects(&cluster, instance, &desired.objects, &dest_ns);
    let diff = shared
        .diff_config(key, app)
        .map_err(|e| comparison_err(format!("invalid ignoreDifferences: {e}")))?;
    let respect = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.sync_option("RespectIgnoreDifferences"))
        == Some("true");
    let scope = |_: &str, _: &str| None;
    let input = CompareInput {
        app_instance: instance,
        destination_namespace: &dest_ns,
        desired: desired.objects.clone(),
        live,
        tracking: shared.settings.tracking,
        label_key: &shared.settings.label_key,
        diff: &diff,
        health: &shared.health,
        scope: &scope,
        respect_ignore_differences: respect,
    };
    let comparison = compare(input);
    let orphaned = project.spec.orphaned_resources.as_ref().map(|settings| {
        let objects: Vec<(ResourceKey, bool)> = cluster
            .cache
            .namespace_objects(&dest_ns)
            .into_iter()
            .map(|l| (l.key, l.complete))
            .collect();
        orphaned_resources(&objects, settings)
    });
    Ok(AppState {
        project,
        destination,
        cluster,
        desired,
        comparison,
        orphaned,
    })
}
