//! Sync operations: start the operation requested in `operation`, drive it step by step
//! with the sync executor, record progress in `status.operationState`, retry per the
//! retry strategy, and finish it (history, `operation` cleared). Re-entrant: a
//! controller that restarts mid-operation rebuilds the plan and the observed state from
//! `operationState.syncResult` and continues.

use std::sync::Arc;

use keelson_model::operation::{OperationState, ResourceResult, ResultCode, SyncOperationResult};
use keelson_model::{Application, OperationPhase, ResourceKey};
use keelson_reconcile::history::{append_history, history_entry};
use keelson_reconcile::project::{ResourceDenial, resource_denial, resource_denied_message};
use keelson_sync::{
    Executor, ExecutorConfig, ExecutorError, Fence, Plan, PlanInput, StepOutcome, SyncOptions,
    SyncRequest, SyncState, plan_sync, resource_results, retry_delay,
};
use kube::api::Api;
use serde_json::json;
use tracing::Instrument;

use crate::app_state::{Retry, StateError, load_state};
use crate::k8s_requests::{CountingOps, OwnedLabels};
use crate::manifests::CacheUse;
use crate::metrics::AppLabels;
use crate::refresh::patch_app;
use crate::shared::{AppKey, Shared, split_key};
use crate::status_patch::merge_patch;

/// An operation this controller is executing.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Sync id of the plan.
    pub sync_id: String,
    /// The plan.
    pub plan: Arc<Plan>,
    /// What has been observed.
    pub state: SyncState,
    /// Destination server.
    pub server: String,
    /// Resolved revisions (one per rendered source) the plan was made from.
    pub revisions: Vec<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A stable sync id for an operation: derived from when it started and its retry count,
/// so a restarted controller names generated hooks the same way.
fn sync_id(state: &OperationState) -> String {
    let seed = format!(
        "{}#{}",
        state.started_at.as_deref().unwrap_or_default(),
        state.retry_count.unwrap_or(0)
    );
    // FNV-1a: a tiny stable hash (no crate needed for 8 hex digits).
    let mut h: u32 = 0x811c_9dc5;
    for b in seed.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

fn is_running(state: Option<&OperationState>) -> bool {
    matches!(
        state.and_then(|s| s.phase),
        Some(OperationPhase::Running | OperationPhase::Terminating)
    )
}

/// Processes one item of the operation queue.
pub async fn process_operation(shared: &Arc<Shared>, key: &AppKey) {
    let span = tracing::info_span!("sync", app = %key, sync_id = tracing::field::Empty);
    process(shared, key).instrument(span).await;
}

async fn process(shared: &Arc<Shared>, key: &AppKey) {
    let (ns, name) = split_key(key);
    let api: Api<Application> = Api::namespaced(shared.client.clone(), ns);
    let mut app = match api.get_opt(name).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            shared.inflight.lock().remove(key);
            return;
        }
        Err(e) => {
            tracing::warn!(app = %key, error = %e, "reading application for its operation failed");
            shared.operation_queue.add_rate_limited(key.clone());
            return;
        }
    };
    if app.metadata.deletion_timestamp.is_some() {
        shared.inflight.lock().remove(key);
        return;
    }
    if let Ok(d) = shared.clusters.resolve(&app.spec.destination)
        && !shared.fence.owns(&d.server, key)
    {
        // Another replica holds this app's unit; it runs (or resumes) the operation.
        shared.inflight.lock().remove(key);
        return;
    }
    let status = app.status.clone().unwrap_or_default();
    let mut op_state = match status.operation_state.clone() {
        Some(s) if is_running(Some(&s)) => s,
        _ => match app.operation.clone() {
            Some(operation) => {
                let state = OperationState {
                    operation,
                    phase: Some(OperationPhase::Running),
                    message: Some("starting sync".to_owned()),
                    started_at: Some(now()),
                    keelson_holder: Some(shared.settings.replica_id.clone()),
                    ..OperationState::default()
                };
                if let Err(e) = persist(shared, &mut app, &state).await {
                    tracing::warn!(app = %key, error = %e, "recording operation start failed");
                    shared.operation_queue.add_rate_limited(key.clone());
                    return;
                }
                state
            }
            None => {
                shared.inflight.lock().remove(key);
                return;
            }
        },
    };
    if op_state.keelson_holder.as_deref() != Some(shared.settings.replica_id.as_str()) {
        tracing::info!(app = %key, previous = ?op_state.keelson_holder, "resuming an operation started by another holder");
        op_state.keelson_holder = Some(shared.settings.replica_id.clone());
    }
    let id = sync_id(&op_state);
    tracing::Span::current().record("sync_id", id.as_str());
    let mut flight = match take_inflight(shared, key, &id) {
        Some(f) => f,
        None => match prepare(shared, key, &app, &op_state, &id).await {
            Ok(f) => f,
            Err(Prepare::NotYet(message)) => {
                tracing::debug!(app = %key, %message, "operation waits for the cluster cache");
                shared
                    .operation_queue
                    .add_after(key.clone(), shared.settings.operation_poll);
                return;
            }
            Err(Prepare::Invalid(results)) => {
                op_state.sync_result = Some(SyncOperationResult {
                    resources: Some(results),
                    ..SyncOperationResult::default()
                });
                finish(
                    shared,
                    key,
                    &mut app,
                    &mut op_state,
                    None,
                    OperationPhase::Failed,
                    "one or more synchronization tasks are not valid".to_owned(),
                )
                .await;
                return;
            }
            Err(Prepare::Fail(message)) => {
                finish(
                    shared,
                    key,
                    &mut app,
                    &mut op_state,
                    None,
                    OperationPhase::Error,
                    message,
                )
                .await;
                return;
            }
        },
    };
    flight.state.terminate_requested = op_state.phase == Some(OperationPhase::Terminating);
    let outcome = run_step(shared, key, &app, &mut flight).await;
    handle_outcome(shared, key, &mut app, &mut op_state, flight, outcome).await;
}

fn take_inflight(shared: &Shared, key: &AppKey, id: &str) -> Option<InFlight> {
    let mut map = shared.inflight.lock();
    match map.remove(key) {
        Some(f) if f.sync_id == id => Some(f),
        _ => None,
    }
}

/// Why an operation could not be planned.
enum Prepare {
    /// The destination's cache is still syncing: try again shortly.
    NotYet(String),
    /// The operation fails with this message.
    Fail(String),
    /// Some tasks are not permitted by the project: the operation fails with these
    /// per-resource results (Argo CD: "one or more synchronization tasks are not valid").
    Invalid(Vec<ResourceResult>),
}

/// A `SyncFailed` result for every task the project does not permit.
fn denied_results(
    state: &crate::app_state::AppState,
    plan: &Plan,
    project: &str,
) -> Vec<ResourceResult> {
    let mut out = Vec::new();
    for task in &plan.tasks {
        let k = &task.key;
        let ns = (!k.namespace.is_empty()).then_some(k.namespace.as_str());
        let server = &state.destination.server;
        let name = Some(state.destination.name.as_str());
        let Some(denial) = resource_denial(&state.project, &k.group, &k.kind, ns, server, name)
        else {
            continue;
        };
        let shown_ns = (denial == ResourceDenial::Namespace).then_some(k.namespace.as_str());
        out.push(ResourceResult {
            group: Some(k.group.clone()),
            version: Some(task.version().to_owned()),
            kind: k.kind.clone(),
            namespace: Some(k.namespace.clone()),
            name: k.name.clone(),
            status: Some(ResultCode::SyncFailed),
            message: Some(resource_denied_message(
                &k.group, &k.kind, shown_ns, project,
            )),
            sync_phase: Some(task.phase),
            ..ResourceResult::default()
        });
    }
    out
}

/// Plans the operation from the app's state at the operation's revision(s); resumes the
/// observed state from `syncResult` when the operation already ran here or elsewhere.
async fn prepare(
    shared: &Shared,
    key: &AppKey,
    app: &Application,
    op_state: &OperationState,
    id: &str,
) -> Result<InFlight, Prepare> {
    let Some(sync) = op_state.operation.sync.as_ref() else {
        return Err(Prepare::Fail("operation has no sync".to_owned()));
    };
    let revisions: Option<Vec<String>> = match (&sync.revisions, &sync.revision) {
        (Some(r), _) if !r.is_empty() => Some(r.clone()),
        (_, Some(r)) if !r.is_empty() => Some(vec![r.clone()]),
        _ => None,
    };
    let state = load_state(shared, key, app, revisions.as_deref(), CacheUse::All)
        .await
        .map_err(|e| match e {
            StateError::Spec { conditions, .. } => Prepare::Fail(
                conditions
                    .into_iter()
                    .map(|c| c.message)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            StateError::Comparison {
                retry: Retry::Soon,
                message,
                ..
            } => Prepare::NotYet(message),
            StateError::Comparison { message, .. } => Prepare::Fail(message),
        })?;
    let mut option_list: Vec<String> = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.sync_options.clone())
        .unwrap_or_default();
    option_list.extend(sync.sync_options.clone().unwrap_or_default());
    let options = SyncOptions::parse(&option_list).map_err(|e| Prepare::Fail(e.to_string()))?;
    let dest_ns = app.spec.destination.namespace.clone().unwrap_or_default();
    let mut input = PlanInput::new(id, state.comparison.sync_inputs());
    input.options = options;
    input.request = SyncRequest::from_operation(sync, &dest_ns);
    input.field_manager = shared.settings.field_manager.clone();
    if !dest_ns.is_empty() {
        input.destination_namespace_live = state
            .cluster
            .cache
            .get(&ResourceKey::new(
                String::new(),
                "Namespace".to_owned(),
                String::new(),
                dest_ns.clone(),
            ))
            .map(|l| l.object);
    }
    let plan = plan_sync(&input).map_err(|e| Prepare::Fail(e.to_string()))?;
    let project = app.spec.project_or_default();
    let denied = denied_results(&state, &plan, project);
    if !denied.is_empty() {
        return Err(Prepare::Invalid(denied));
    }
    let results = op_state
        .sync_result
        .as_ref()
        .and_then(|r| r.resources.as_deref())
        .unwrap_or_default();
    let sync_state = SyncState::from_resource_results(&plan, results);
    Ok(InFlight {
        sync_id: id.to_owned(),
        plan: Arc::new(plan),
        state: sync_state,
        server: state.destination.server.clone(),
        revisions: state.desired.revisions.clone(),
    })
}

struct FenceFor<'a> {
    shared: &'a Shared,
    server: &'a str,
    key: &'a str,
}

impl Fence for FenceFor<'_> {
    fn check(&self) -> Result<(), String> {
        if self.shared.fence.owns(self.server, self.key) {
            Ok(())
        } else {
            Err(format!("this controller no longer holds {}", self.server))
        }
    }
}

async fn run_step(
    shared: &Shared,
    key: &AppKey,
    app: &Application,
    flight: &mut InFlight,
) -> Result<StepOutcome, ExecutorError> {
    let entry = shared
        .clusters
        .entry(&flight.server)
        .map_err(|e| ExecutorError::Fenced(e.to_string()))?;
    let (ns, name) = split_key(key);
    let ops = CountingOps::new(
        entry.ops.clone(),
        shared.metrics.clone(),
        OwnedLabels {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            project: app.spec.project_or_default().to_owned(),
            dest_server: flight.server.clone(),
        },
    )
    .with_log(
        shared.apply_log.clone(),
        shared.fence.unit_name(&flight.server, key),
    );
    let config = ExecutorConfig {
        parallelism: shared.settings.kubectl_parallelism_limit,
        write_timeout: shared.settings.write_timeout,
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(ops, shared.health.clone(), config);
    let fence = FenceFor {
        shared,
        server: &flight.server,
        key,
    };
    let Some(_step) = shared.fence.begin_step(&flight.server, key) else {
        return Err(ExecutorError::Fenced(format!(
            "this controller does not hold {}",
            flight.server
        )));
    };
    let plan = flight.plan.clone();
    executor.step(&plan, &mut flight.state, &fence).await
}

async fn handle_outcome(
    shared: &Arc<Shared>,
    key: &AppKey,
    app: &mut Application,
    op_state: &mut OperationState,
    flight: InFlight,
    outcome: Result<StepOutcome, ExecutorError>,
) {
    let (phase, message, retryable) = match outcome {
        Err(ExecutorError::Fenced(reason)) => {
            tracing::info!(app = %key, %reason, "operation paused: not the owner");
            return;
        }
        Err(e) => {
            tracing::warn!(app = %key, error = %e, "sync step failed; retrying");
            op_state.message = Some(e.to_string());
            op_state.sync_result = Some(sync_result(app, &flight));
            let _ = persist(shared, app, op_state).await;
            shared.inflight.lock().insert(key.clone(), flight);
            shared.operation_queue.add_rate_limited(key.clone());
            return;
        }
        Ok(StepOutcome::Wait(message)) => {
            wait(shared, key, app, op_state, flight, message).await;
            return;
        }
        Ok(StepOutcome::Run(_)) => {
            wait(shared, key, app, op_state, flight, "running".to_owned()).await;
            return;
        }
        Ok(StepOutcome::Succeeded(message)) => (OperationPhase::Succeeded, message, false),
        Ok(StepOutcome::Failed(message)) => (OperationPhase::Failed, message, true),
        // A terminated operation ends Failed and is never retried.
        Ok(StepOutcome::Terminated(message)) => (OperationPhase::Failed, message, false),
    };
    let result = sync_result(app, &flight);
    if retryable && retry(shared, key, app, op_state, &result, &message).await {
        return;
    }
    let done = Some((result, &flight));
    finish(shared, key, app, op_state, done, phase, message).await;
}

async fn wait(
    shared: &Arc<Shared>,
    key: &AppKey,
    app: &mut Application,
    op_state: &mut OperationState,
    flight: InFlight,
    message: String,
) {
    let result = sync_result(app, &flight);
    let changed = op_state.message.as_deref() != Some(message.as_str())
        || op_state.sync_result.as_ref() != Some(&result);
    op_state.message = Some(message);
    op_state.sync_result = Some(result);
    if changed && let Err(e) = persist(shared, app, op_state).await {
        tracing::warn!(app = %key, error = %e, "recording operation progress failed");
    }
    shared.inflight.lock().insert(key.clone(), flight);
    shared
        .operation_queue
        .add_after(key.clone(), shared.settings.operation_poll);
}

fn sync_result(app: &Application, flight: &InFlight) -> SyncOperationResult {
    let multi = app.spec.has_multiple_sources();
    let revisions = flight.revisions.clone();
    SyncOperationResult {
        resources: Some(resource_results(&flight.plan, &flight.state)),
        revision: if multi {
            None
        } else {
            revisions.first().cloned()
        },
        revisions: multi.then_some(revisions),
        source: if multi { None } else { app.spec.source.clone() },
        sources: if multi {
            app.spec.sources.clone()
        } else {
            None
        },
        ..SyncOperationResult::default()
    }
}

/// Schedules a retry of a failed operation when its retry strategy allows one.
async fn retry(
    shared: &Arc<Shared>,
    key: &AppKey,
    app: &mut Application,
    op_state: &mut OperationState,
    result: &SyncOperationResult,
    message: &str,
) -> bool {
    if op_state.phase == Some(OperationPhase::Terminating) {
        return false;
    }
    let Some(strategy) = op_state.operation.retry.clone() else {
        return false;
    };
    let count = op_state.retry_count.unwrap_or(0);
    let delay = match retry_delay(&strategy, u32::try_from(count).unwrap_or(u32::MAX)) {
        Ok(Some(d)) => d,
        _ => return false,
    };
    op_state.retry_count = Some(count + 1);
    op_state.started_at = Some(now());
    op_state.message = Some(format!(
        "Retrying attempt #{} in {}s: {message}",
        count + 1,
        delay.as_secs()
    ));
    op_state.sync_result = Some(result.clone());
    if let Err(e) = persist(shared, app, op_state).await {
        tracing::warn!(app = %key, error = %e, "recording retry failed");
    }
    shared.operation_queue.add_after(key.clone(), delay);
    true
}

async fn finish(
    shared: &Arc<Shared>,
    key: &AppKey,
    app: &mut Application,
    op_state: &mut OperationState,
    result: Option<(SyncOperationResult, &InFlight)>,
    phase: OperationPhase,
    message: String,
) {
    let finished = now();
    op_state.phase = Some(phase);
    op_state.message = Some(message);
    op_state.finished_at = Some(finished.clone());
    let dry_run = result.as_ref().is_some_and(|(_, f)| f.plan.dry_run);
    if let Some((r, _)) = &result {
        op_state.sync_result = Some(r.clone());
    }
    let mut status_patch = json!({"operationState": operation_state_patch(app, op_state)});
    if phase == OperationPhase::Succeeded && !dry_run {
        let mut status = app.status.clone().unwrap_or_default();
        let started = op_state.started_at.clone().unwrap_or_default();
        if let Some(entry) = history_entry(op_state, &started, &finished) {
            append_history(&mut status, entry, app.spec.revision_history_limit);
            status_patch["history"] = json!(status.history);
        }
    }
    let patch = json!({"operation": null, "status": status_patch});
    if let Err(e) = patch_app(shared, app, &patch).await {
        tracing::warn!(app = %key, error = %e, "recording operation result failed");
        shared.operation_queue.add_rate_limited(key.clone());
        return;
    }
    shared.inflight.lock().remove(key);
    shared.operation_queue.forget(key);
    let (ns, name) = split_key(key);
    let seconds = op_state
        .started_at
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            chrono::Utc::now()
                .signed_duration_since(t)
                .num_milliseconds() as f64
                / 1000.0
        })
        .unwrap_or(0.0);
    let server = result.map(|(_, f)| f.server.clone()).unwrap_or_default();
    shared.metrics.sync_finished(
        &AppLabels {
            namespace: ns,
            name,
            project: app.spec.project_or_default(),
            dest_server: &server,
        },
        &phase.to_string(),
        seconds,
    );
    tracing::info!(app = %key, phase = %phase, "operation finished");
    shared.refresh_queue.add(key.clone());
}

/// Writes `status.operationState`, replacing the stored one exactly: the merge patch is
/// computed against what is stored (nulls remove fields the new state no longer has),
/// and `app` is updated to what was written.
async fn persist(
    shared: &Shared,
    app: &mut Application,
    state: &OperationState,
) -> Result<(), crate::error::WriteError> {
    let patch = operation_state_patch(app, state);
    patch_app(shared, app, &json!({"status": {"operationState": patch}})).await?;
    app.status
        .get_or_insert_with(Default::default)
        .operation_state = Some(state.clone());
    Ok(())
}

/// The merge patch turning the stored operationState of `app` into `state`.
fn operation_state_patch(app: &Application, state: &OperationState) -> serde_json::Value {
    let new = serde_json::to_value(state).unwrap_or_default();
    let old = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .and_then(|s| serde_json::to_value(s).ok());
    match old {
        Some(old) => merge_patch(&old, &new).unwrap_or_else(|| json!({})),
        None => new,
    }
}
