//! One refresh of one Application: compare desired with live, write `status` when it
//! changed, start an automated sync when the policy says so, and schedule the next
//! resync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_model::annotations::{REFRESH, REFRESH_HARD, SKIP_RECONCILE};
use keelson_model::application_status::{ApplicationCondition, ComparedTo, SyncStatus};
use keelson_model::{Application, ApplicationStatus, HealthStatus, Operation, SyncStatusCode};
use keelson_reconcile::automation::{AutoSyncDecision, AutoSyncInput, decide_auto_sync};
use kube::api::{Api, Patch, PatchParams};
use rand::Rng;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::app_state::{AppState, COMPARISON_ERROR, Retry, StateError, load_state};
use crate::error::WriteError;
use crate::manifests::{CacheUse, now_unix_ms};
use crate::metrics::AppInfo;
use crate::shared::{AppKey, Shared, split_key};
use crate::status_patch::{merge_conditions, merge_patch, without_timestamps};

/// How soon an app whose destination cluster failed is compared again: the check is
/// cheap (no repo-server call, no status write while nothing changed), and the app
/// leaves Unknown within this of its cluster coming back.
const CLUSTER_DOWN_RETRY: Duration = Duration::from_secs(5);

/// How soon (plus up to as much again, at random) an app whose repo-server request
/// failed for want of the repo-server is compared again: a repo-server restart or a
/// burst of slow renders must not leave apps Unknown until the next resync.
const REPO_RETRY: Duration = Duration::from_secs(10);

/// Condition type written by automated sync decisions.
pub const SYNC_ERROR: &str = "SyncError";

/// Refreshes one app.
pub async fn refresh_app(shared: &Arc<Shared>, key: &AppKey) {
    let asked = shared.refresh_requests.start(key);
    let span = tracing::info_span!("reconcile", app = %key);
    let started_ms = now_unix_ms();
    let deferred = refresh(shared, key, asked).instrument(span).await;
    if !deferred && let Some(seconds) = shared.takeovers.compared(key, started_ms, now_unix_ms()) {
        shared
            .metrics
            .unit_taken_over(seconds, shared.takeovers.reconciling());
    }
    if let Some(at) = asked {
        let pending = shared.refresh_requests.finish(key, at, deferred);
        shared.metrics.set_refresh_pending(pending);
    }
}

/// Refreshes `key` (`asked`: when a refresh of it was requested); true when it was put
/// off and queued again (the destination's cache is still filling, or the status write
/// failed), so a requested refresh stays requested.
async fn refresh(shared: &Arc<Shared>, key: &AppKey, asked: Option<u64>) -> bool {
    let (ns, name) = split_key(key);
    let Some(app) = shared.app(key) else {
        shared.metrics.remove_app(ns, name);
        shared.app_diff.lock().remove(key);
        return false;
    };
    if app.metadata.deletion_timestamp.is_some() {
        crate::deletion::finalize(shared, key, &app).await;
        return false;
    }
    let annotations = app.metadata.annotations.clone().unwrap_or_default();
    if annotations.get(SKIP_RECONCILE).map(String::as_str) == Some("true") {
        return false;
    }
    if let Ok(d) = shared.clusters.resolve(&app.spec.destination)
        && !shared.fence.owns(&d.server, key)
    {
        // Another replica holds this app's unit.
        return false;
    }
    let started = Instant::now();
    let requested = annotations.get(REFRESH).cloned();
    let hard = requested.as_deref() == Some(REFRESH_HARD)
        || shared.hard_refresh.lock().remove(key).is_some()
        || hard_resync_due(shared, &app);
    let cache = if hard {
        CacheUse::Nothing
    } else if requested.is_some() {
        CacheUse::LatestRevision
    } else if let Some(at) = asked {
        CacheUse::ListedAfter(at)
    } else {
        CacheUse::All
    };
    let state = load_state(shared, key, &app, None, cache).await;
    if let Err(StateError::Comparison {
        retry: Retry::Soon, ..
    }) = &state
    {
        // The destination's cache is still filling (just started, or this replica just
        // took the cluster over): look again shortly instead of reporting Unknown.
        shared
            .refresh_queue
            .add_after(key.clone(), shared.settings.cluster_sync_wait);
        return true;
    }
    let mut retry = Retry::AtResync;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let no_status = ApplicationStatus::default();
    let previous = app.status.as_ref().unwrap_or(&no_status);
    let mut status = previous.clone();
    let mut fresh_conditions = Vec::new();
    let mut decision = None;
    let dest_server = match &state {
        Ok(s) => {
            apply_comparison(&mut status, &app, s, &mut fresh_conditions);
            decision = Some(decide(&app, s));
            s.destination.server.clone()
        }
        Err(StateError::Spec {
            conditions,
            destination,
        }) => {
            set_unknown(&mut status, &app);
            fresh_conditions.extend(conditions.iter().cloned());
            destination
                .as_ref()
                .map(|d| d.server.clone())
                .unwrap_or_default()
        }
        Err(StateError::Comparison {
            message,
            destination,
            retry: why,
        }) => {
            retry = *why;
            set_unknown(&mut status, &app);
            fresh_conditions.push(ApplicationCondition {
                type_: COMPARISON_ERROR.to_owned(),
                message: message.clone(),
                last_transition_time: None,
            });
            destination
                .as_ref()
                .map(|d| d.server.clone())
                .unwrap_or_default()
        }
    };
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .is_some_and(|p| p.is_automated());
    if let Some(AutoSyncDecision::Refused { condition }) = &decision {
        fresh_conditions.push(condition.clone());
    }
    let conditions = merge_conditions(
        previous.conditions.as_deref().unwrap_or_default(),
        fresh_conditions,
        |t| t != SYNC_ERROR || automated,
        &now,
    );
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    status.controller_namespace = Some(shared.settings.namespace.clone());
    // Typed equality before the timestamps move: most refreshes change nothing, and this
    // spares them encoding both statuses to JSON (a typed difference is checked again
    // on the JSON, where an absent and an empty field are alike).
    let maybe_changed = status != *previous;
    status.reconciled_at = Some(now.clone());
    status.observed_at = Some(now);
    // An automated sync is requested in the same write as the status it follows from.
    let auto_op = match &decision {
        Some(AutoSyncDecision::Sync {
            operation,
            self_heal,
        }) => {
            tracing::info!(app = %key, self_heal, "initiating automated sync");
            Some(operation.as_ref().clone())
        }
        _ => None,
    };
    let write = StatusWrite {
        previous,
        status: &status,
        maybe_changed,
        remove_refresh_annotation: requested.is_some(),
        operation: auto_op.as_ref(),
    };
    if !dest_server.is_empty() && !shared.fence.owns(&dest_server, key) {
        // Ownership moved while this refresh ran (or the lease lapsed): the new owner
        // writes this app's status and operations.
        return false;
    }
    if let Err(e) = write_status(shared, &app, &write).await {
        tracing::warn!(error = %e, "writing application status failed");
        shared.refresh_queue.add_rate_limited(key.clone());
        return true;
    }
    shared.refresh_queue.forget(key);
    if auto_op.is_some() {
        shared.operation_queue.add(key.clone());
    } else if let Some(decision) = decision {
        act_on_decision(shared, key, decision);
    }
    export_metrics(shared, &app, &status, &state);
    let elapsed = started.elapsed().as_secs_f64();
    shared.metrics.observe_reconcile(ns, &dest_server, elapsed);
    tracing::debug!(seconds = elapsed, "reconciled");
    let next = match retry {
        Retry::AtResync => resync_delay(shared),
        Retry::Soon => shared.settings.cluster_sync_wait,
        Retry::ClusterDown => CLUSTER_DOWN_RETRY,
        Retry::RepoUnavailable => {
            REPO_RETRY + REPO_RETRY.mul_f64(rand::rng().random_range(0.0..1.0))
        }
    };
    shared.refresh_queue.add_after(key.clone(), next);
    false
}

fn hard_resync_due(shared: &Shared, app: &Application) -> bool {
    let Some(period) = shared.settings.app_hard_resync else {
        return false;
    };
    let Some(at) = app.status.as_ref().and_then(|s| s.reconciled_at.as_deref()) else {
        return false;
    };
    chrono::DateTime::parse_from_rfc3339(at).is_ok_and(|t| {
        let age = chrono::Utc::now().signed_duration_since(t);
        age.to_std().is_ok_and(|a| a >= period)
    })
}

/// The next resync: the period plus random jitter.
pub fn resync_delay(shared: &Shared) -> Duration {
    let jitter = shared.settings.app_resync_jitter.as_millis() as u64;
    let extra = if jitter == 0 {
        0
    } else {
        rand::rng().random_range(0..jitter)
    };
    shared.settings.app_resync + Duration::from_millis(extra)
}

fn compared_to(app: &Application) -> ComparedTo {
    let multi = app.spec.has_multiple_sources();
    ComparedTo {
        source: if multi { None } else { app.spec.source.clone() },
        sources: if multi {
            app.spec.sources.clone()
        } else {
            None
        },
        destination: Some(app.spec.destination.clone()),
        ignore_differences: app.spec.ignore_differences.clone(),
        ..ComparedTo::default()
    }
}

fn set_unknown(status: &mut ApplicationStatus, app: &Application) {
    let mut sync = status.sync.clone().unwrap_or_default();
    sync.status = Some(SyncStatusCode::Unknown);
    sync.compared_to = Some(compared_to(app));
    status.sync = Some(sync);
}

fn apply_comparison(
    status: &mut ApplicationStatus,
    app: &Application,
    state: &AppState,
    conditions: &mut Vec<ApplicationCondition>,
) {
    let c = &state.comparison;
    let multi = app.spec.has_multiple_sources();
    let revisions = &state.desired.revisions;
    status.sync = Some(SyncStatus {
        status: Some(c.sync_status),
        compared_to: Some(compared_to(app)),
        revision: if multi {
            None
        } else {
            revisions.first().cloned()
        },
        revisions: multi.then(|| revisions.clone()),
        ..SyncStatus::default()
    });
    let previous_health = status.health.clone();
    let mut health: HealthStatus = c.health.clone();
    health.last_transition_time = match previous_health {
        Some(p) if p.status == health.status => p.last_transition_time,
        _ => Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    status.health = Some(health);
    let resources = c.resource_statuses();
    status.resources = (!resources.is_empty()).then_some(resources);
    status.summary = Some(c.summary.clone());
    let types = &state.desired.source_types;
    status.source_type = types.first().cloned();
    status.source_types = multi.then(|| types.clone());
    conditions.extend(c.conditions.iter().cloned());
    if let Some(orphans) = state.orphaned.as_ref().filter(|o| !o.is_empty()) {
        let warn = state
            .project
            .spec
            .orphaned_resources
            .as_ref()
            .and_then(|o| o.warn)
            .unwrap_or(true);
        if warn {
            conditions.push(ApplicationCondition {
                type_: "OrphanedResourceWarning".to_owned(),
                message: format!("Application has {} orphaned resources", orphans.len()),
                last_transition_time: None,
            });
        }
    }
}

fn decide(app: &Application, state: &AppState) -> AutoSyncDecision {
    let (out_of_sync, requires_pruning, desired) = state.comparison.out_of_sync_counts();
    let resources = state.comparison.resource_statuses();
    decide_auto_sync(&AutoSyncInput {
        resources: &resources,
        app,
        sync_status: state.comparison.sync_status,
        revisions: &state.desired.revisions,
        out_of_sync,
        requires_pruning,
        desired,
        now: chrono::Utc::now(),
    })
}

/// Writes `status` when it differs from `previous` in more than timestamps, or when the
/// previous reconcile time is older than the resync period (so `reconciledAt` stays
/// truthful within one period), or when a refresh was requested (the annotation is
/// removed in the same patch).
/// What one refresh writes.
struct StatusWrite<'a> {
    previous: &'a ApplicationStatus,
    status: &'a ApplicationStatus,
    /// False when `status` equals `previous` but for `reconciledAt` and `observedAt`.
    maybe_changed: bool,
    remove_refresh_annotation: bool,
    /// An automated sync to request in the same patch.
    operation: Option<&'a Operation>,
}

async fn write_status(
    shared: &Shared,
    app: &Application,
    w: &StatusWrite<'_>,
) -> Result<(), WriteError> {
    let StatusWrite {
        previous,
        status,
        maybe_changed,
        remove_refresh_annotation,
        operation,
    } = *w;
    let stale = previous
        .reconciled_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| {
            chrono::Utc::now()
                .signed_duration_since(t)
                .to_std()
                .is_ok_and(|age| age >= shared.settings.app_resync)
        });
    let nothing_else = !stale && !remove_refresh_annotation && operation.is_none();
    if !maybe_changed && nothing_else {
        return Ok(());
    }
    let key = format!(
        "{}/{}",
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default()
    );
    let encode = |source| WriteError::Encode {
        app: key.clone(),
        source,
    };
    let old = serde_json::to_value(previous).map_err(encode)?;
    let new = serde_json::to_value(status).map_err(encode)?;
    let changed = without_timestamps(&old) != without_timestamps(&new);
    if !changed && nothing_else {
        return Ok(());
    }
    let mut patch = json!({});
    if let Some(p) = merge_patch(&old, &new) {
        patch["status"] = p;
    }
    if remove_refresh_annotation {
        patch["metadata"] = json!({"annotations": {REFRESH: Value::Null}});
    }
    if let Some(op) = operation {
        patch["operation"] = json!(op);
    }
    patch_app(shared, app, &patch).await
}

/// Sends a merge patch to an Application.
pub async fn patch_app(
    shared: &Shared,
    app: &Application,
    patch: &Value,
) -> Result<(), WriteError> {
    let ns = app.metadata.namespace.as_deref().unwrap_or_default();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Application> = Api::namespaced(shared.client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|source| WriteError::PatchApp {
            app: format!("{ns}/{name}"),
            source,
        })
}

fn act_on_decision(shared: &Arc<Shared>, key: &AppKey, decision: AutoSyncDecision) {
    match decision {
        AutoSyncDecision::Sync { .. } => {}
        AutoSyncDecision::Backoff {
            retry_after,
            reason,
        } => {
            tracing::debug!(app = %key, %reason, ?retry_after, "self-heal backing off");
            shared.refresh_queue.add_after(key.clone(), retry_after);
        }
        AutoSyncDecision::Skip { reason } => {
            tracing::trace!(app = %key, %reason, "no automated sync");
        }
        AutoSyncDecision::Refused { condition } => {
            tracing::info!(app = %key, message = %condition.message, "automated sync refused");
        }
    }
}

fn export_metrics(
    shared: &Shared,
    app: &Application,
    status: &ApplicationStatus,
    state: &Result<AppState, StateError>,
) {
    let ns = app.metadata.namespace.as_deref().unwrap_or_default();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let code = |v: Option<String>| v.unwrap_or_default();
    let info = AppInfo {
        project: app.spec.project_or_default().to_owned(),
        autosync_enabled: app
            .spec
            .sync_policy
            .as_ref()
            .is_some_and(|p| p.is_automated()),
        repo: app
            .spec
            .effective_sources()
            .first()
            .map(|s| s.repo_url.clone())
            .unwrap_or_default(),
        dest_server: match state {
            Ok(s) => s.destination.server.clone(),
            Err(_) => app.spec.destination.server.clone().unwrap_or_default(),
        },
        dest_namespace: app.spec.destination.namespace.clone().unwrap_or_default(),
        sync_status: code(
            status
                .sync
                .as_ref()
                .and_then(|s| s.status)
                .map(|s| s.to_string()),
        ),
        health_status: code(
            status
                .health
                .as_ref()
                .and_then(|h| h.status)
                .map(|h| h.to_string()),
        ),
        operation: if app.operation.is_some() {
            "sync".to_owned()
        } else {
            String::new()
        },
    };
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect();
    let orphaned = state
        .as_ref()
        .ok()
        .and_then(|s| s.orphaned.as_ref())
        .map(Vec::len);
    shared
        .metrics
        .set_app(ns, name, &info, &conditions, orphaned);
}
