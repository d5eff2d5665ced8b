//! Deleting an Application with the `resources-finalizer.argocd.argoproj.io` finalizer
//! (or its `/background` and `/foreground` variants): the app's live objects are deleted
//! wave by wave, highest wave first, each wave waiting for the previous one to be gone;
//! then the finalizer is removed. Without the finalizer nothing is deleted.

use std::sync::Arc;
use std::time::Duration;

use keelson_cluster_cache::LiveObject;
use keelson_model::Application;
use keelson_model::annotations::{
    RESOURCES_FINALIZER, RESOURCES_FINALIZER_BACKGROUND, RESOURCES_FINALIZER_FOREGROUND,
};
use keelson_model::operation::SyncPhase;
use keelson_sync::{
    ClusterOps, Permission, PropagationPolicy, SyncTask, TaskId, TaskOperation,
    deletion_permission, wave_of,
};
use serde_json::{Value, json};

use crate::refresh::patch_app;
use crate::shared::{AppKey, Shared};

/// How long to wait before looking again while objects are being deleted.
const RECHECK: Duration = Duration::from_secs(1);

fn our_finalizer(app: &Application) -> Option<(String, PropagationPolicy)> {
    app.metadata.finalizers.iter().flatten().find_map(|f| {
        let policy = match f.as_str() {
            RESOURCES_FINALIZER | RESOURCES_FINALIZER_FOREGROUND => PropagationPolicy::Foreground,
            RESOURCES_FINALIZER_BACKGROUND => PropagationPolicy::Background,
            _ => return None,
        };
        Some((f.clone(), policy))
    })
}

fn has_controller_owner(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// The objects the finalizer must delete: tracked, not owned by another object (the
/// garbage collector takes those), not marked `Delete=false`.
fn deletable(objects: Vec<LiveObject>) -> Vec<LiveObject> {
    objects
        .into_iter()
        .filter(|o| !has_controller_owner(&o.object))
        .filter(|o| !matches!(deletion_permission(&o.object), Ok(Permission::Disabled)))
        .collect()
}

/// Advances the deletion of an app being deleted.
pub async fn finalize(shared: &Arc<Shared>, key: &AppKey, app: &Application) {
    let Some((finalizer, propagation)) = our_finalizer(app) else {
        return;
    };
    let remove = |reason: &str| {
        tracing::info!(app = %key, reason, "removing resources finalizer");
    };
    let destination = match shared.clusters.resolve(&app.spec.destination) {
        Ok(d) => d,
        Err(e) => {
            remove(&format!("destination does not resolve: {e}"));
            remove_finalizer(shared, key, app, &finalizer).await;
            return;
        }
    };
    if !shared.fence.owns(&destination.server, key) {
        return;
    }
    let entry = match shared.clusters.entry(&destination.server) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(app = %key, error = %e, "cannot reach destination to delete resources");
            shared.refresh_queue.add_after(key.clone(), RECHECK * 5);
            return;
        }
    };
    if !entry.cache.status().synced {
        shared.refresh_queue.add_after(key.clone(), RECHECK);
        return;
    }
    let instance = app.metadata.name.as_deref().unwrap_or_default();
    let objects = deletable(entry.cache.app_objects(instance));
    if objects.is_empty() {
        remove("all resources deleted");
        remove_finalizer(shared, key, app, &finalizer).await;
        return;
    }
    // Deleting writes to the cluster: hold the unit for the whole round.
    let Some(_step) = shared.fence.begin_step(&destination.server, key) else {
        return;
    };
    let top = objects
        .iter()
        .map(|o| wave_of(&o.key, &o.object).unwrap_or(0))
        .max()
        .unwrap_or_default();
    for obj in objects
        .iter()
        .filter(|o| wave_of(&o.key, &o.object).unwrap_or(0) == top)
    {
        if obj.object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let task = SyncTask {
            id: TaskId::new(SyncPhase::Sync, &obj.key),
            key: obj.key.clone(),
            api_version: obj
                .object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            phase: SyncPhase::Sync,
            wave: top,
            operation: TaskOperation::Prune { propagation },
            hook: None,
            desired: None,
            live: Some(obj.object.clone()),
        };
        let outcome = entry.ops.delete(&task, propagation).await;
        if outcome.is_failed() {
            tracing::warn!(app = %key, resource = %obj.key, message = outcome.message(), "deleting resource failed");
        }
    }
    shared.refresh_queue.add_after(key.clone(), RECHECK);
}

async fn remove_finalizer(shared: &Shared, key: &AppKey, app: &Application, finalizer: &str) {
    let remaining: Vec<&String> = app
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| f.as_str() != finalizer)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": remaining,
        "resourceVersion": app.metadata.resource_version,
    }});
    if let Err(e) = patch_app(shared, app, &patch).await {
        tracing::warn!(app = %key, error = %e, "removing the finalizer failed");
        shared.refresh_queue.add_after(key.clone(), RECHECK);
    }
}
