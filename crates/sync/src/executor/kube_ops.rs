//! `KubeOps`: [`ClusterOps`] with kube-rs against one destination cluster — discovery
//! of each task's kind (cached), and the writes of every apply method, prune and dry
//! run, with kubectl-like result messages.

use super::written_version::note_written;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams,
    ValidationDirective,
};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, Error as KubeError};
use serde_json::Value;

use super::client_side::{is_empty_patch, last_applied, three_way_merge_patch, with_last_applied};
use super::error::ExecutorError;
use super::ops::ClusterOps;
use crate::options::PropagationPolicy;
use crate::state::WriteOutcome;
use crate::task::{ApplyMethod, SyncTask, TaskOperation};
use keelson_diff::with_port_protocols;

/// The API's message when a kind is not served (kubectl and Argo CD show the same).
pub const RESOURCE_NOT_FOUND: &str = "the server could not find the requested resource";
/// Suffix of dry-run result messages (kubectl's `--dry-run=server`).
const DRY_RUN_SUFFIX: &str = " (server dry run)";
/// Field manager of client-side apply, replace and create (kubectl's).
const CLIENT_SIDE_MANAGER: &str = "kubectl-client-side-apply";
/// Polls while waiting for a deleted object to disappear before re-creating it.
const GONE_POLLS: u32 = 100;
const GONE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A resolved kind: its API resource and whether it is namespaced.
#[derive(Clone)]
struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

/// kube-rs cluster operations for one destination cluster. Kinds are resolved with
/// `pinned_kind` and cached; a kind not served is asked again next time (its CRD may
/// have been created earlier in the same sync).
pub struct KubeOps {
    client: Client,
    kinds: Mutex<HashMap<String, Kind>>,
}

impl std::fmt::Debug for KubeOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeOps").finish_non_exhaustive()
    }
}

/// A task's object behind its API: where to write and how to name it in messages.
struct Target {
    api: Api<DynamicObject>,
    name: String,
    reference: String,
}

/// Whether an error says the kind (or its group/version) is not served.
fn is_missing_kind(error: &KubeError) -> bool {
    match error {
        KubeError::Api(status) => status.is_not_found() || status.code == 404,
        KubeError::Discovery(_) => true,
        _ => false,
    }
}

fn is_not_found(error: &KubeError) -> bool {
    matches!(error, KubeError::Api(status) if status.is_not_found() || status.code == 404)
}

/// The message of a failed call: the API's own message when it answered.
pub(crate) fn error_message(error: &KubeError) -> String {
    match error {
        KubeError::Api(status) if !status.message.is_empty() => status.message.clone(),
        KubeError::Api(status) if !status.reason.is_empty() => status.reason.clone(),
        other => other.to_string(),
    }
}

/// An executor error with the API's message of its cause, for a result message.
fn describe(error: &ExecutorError) -> String {
    match error {
        ExecutorError::Discovery { source, .. } | ExecutorError::Get { source, .. } => {
            format!("{error}: {}", error_message(source))
        }
        other => other.to_string(),
    }
}

/// kubectl's name of an object: `deployment.apps/web`, `configmap/foo`.
pub fn reference(task: &SyncTask) -> String {
    let kind = task.key.kind.to_lowercase();
    if task.key.group.is_empty() {
        format!("{kind}/{}", task.key.name)
    } else {
        format!("{kind}.{}/{}", task.key.group, task.key.name)
    }
}

fn to_object(value: &Value) -> Result<DynamicObject, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("invalid object: {e}"))
}

fn to_value(object: &DynamicObject) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| format!("invalid object from the api: {e}"))
}

fn propagation(policy: PropagationPolicy) -> kube::api::PropagationPolicy {
    match policy {
        PropagationPolicy::Foreground => kube::api::PropagationPolicy::Foreground,
        PropagationPolicy::Background => kube::api::PropagationPolicy::Background,
        PropagationPolicy::Orphan => kube::api::PropagationPolicy::Orphan,
    }
}

fn done(message: String, dry_run: bool) -> WriteOutcome {
    if dry_run {
        WriteOutcome::Ok(format!("{message}{DRY_RUN_SUFFIX}"))
    } else {
        WriteOutcome::Ok(message)
    }
}

fn failed(error: &KubeError) -> WriteOutcome {
    WriteOutcome::Failed(error_message(error))
}

fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some(CLIENT_SIDE_MANAGER.to_owned()),
    }
}

impl KubeOps {
    /// Operations through `client` (the destination cluster).
    pub fn new(client: Client) -> Self {
        KubeOps {
            client,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The client in use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn cached(&self, key: &str) -> Option<Kind> {
        self.kinds.lock().ok()?.get(key).cloned()
    }

    /// Resolves the task's kind; `None` when the API server does not serve it.
    async fn resolve(&self, task: &SyncTask) -> Result<Option<Kind>, ExecutorError> {
        let version = task.version();
        let key = format!("{}/{}/{}", task.key.group, version, task.key.kind);
        if let Some(kind) = self.cached(&key) {
            return Ok(Some(kind));
        }
        if version.is_empty() || task.key.kind.is_empty() {
            return Ok(None);
        }
        let gvk = GroupVersionKind::gvk(&task.key.group, version, &task.key.kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, caps)) => {
                let kind = Kind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                };
                if let Ok(mut kinds) = self.kinds.lock() {
                    kinds.insert(key, kind.clone());
                }
                Ok(Some(kind))
            }
            Err(e) if is_missing_kind(&e) => Ok(None),
            Err(source) => Err(ExecutorError::Discovery {
                kind: key,
                source: Box::new(source),
            }),
        }
    }

    async fn target(&self, task: &SyncTask) -> Result<Option<Target>, ExecutorError> {
        let Some(kind) = self.resolve(task).await? else {
            return Ok(None);
        };
        let client = self.client.clone();
        let api = match (kind.namespaced, task.key.namespace.as_str()) {
            (true, "") => Api::default_namespaced_with(client, &kind.resource),
            (true, ns) => Api::namespaced_with(client, ns, &kind.resource),
            (false, _) => Api::all_with(client, &kind.resource),
        };
        Ok(Some(Target {
            api,
            name: task.key.name.clone(),
            reference: reference(task),
        }))
    }

    /// The write of a task, for real or as a dry run.
    async fn write(&self, task: &SyncTask, dry_run: bool) -> WriteOutcome {
        let (method, validate, skip_missing) = match &task.operation {
            TaskOperation::PruneSkipped { message } => return WriteOutcome::Ok(message.clone()),
            TaskOperation::Prune { propagation } => {
                return self.delete_with(task, *propagation, dry_run).await;
            }
            TaskOperation::Apply {
                method,
                validate,
                skip_dry_run_on_missing_resource,
            } => (method, *validate, *skip_dry_run_on_missing_resource),
        };
        let target = match self.target(task).await {
            Ok(Some(target)) => target,
            Ok(None) if dry_run && skip_missing => {
                return WriteOutcome::Ok(format!(
                    "{} skipped dry run (kind not known yet)",
                    reference(task)
                ));
            }
            Ok(None) => return WriteOutcome::Failed(RESOURCE_NOT_FOUND.to_owned()),
            Err(e) => return WriteOutcome::Failed(describe(&e)),
        };
        let Some(desired) = &task.desired else {
            return WriteOutcome::Failed(format!("{} has no desired object", target.reference));
        };
        match method {
            ApplyMethod::ServerSide {
                force,
                field_manager,
            } => {
                server_side_apply(&target, desired, *force, field_manager, validate, dry_run).await
            }
            ApplyMethod::ClientSide { force } => {
                client_side_apply(&target, desired, *force, dry_run).await
            }
            ApplyMethod::Replace { force } => replace(&target, desired, *force, dry_run).await,
            ApplyMethod::Update => replace(&target, desired, false, dry_run).await,
            ApplyMethod::Create => create(&target, desired, dry_run).await,
        }
    }

    async fn delete_with(
        &self,
        task: &SyncTask,
        policy: PropagationPolicy,
        dry_run: bool,
    ) -> WriteOutcome {
        let target = match self.target(task).await {
            Ok(Some(target)) => target,
            Ok(None) => return done(format!("{} already deleted", reference(task)), dry_run),
            Err(e) => return WriteOutcome::Failed(describe(&e)),
        };
        let params = DeleteParams {
            dry_run,
            propagation_policy: Some(propagation(policy)),
            ..DeleteParams::default()
        };
        match target.api.delete(&target.name, &params).await {
            Ok(_) => done(format!("{} deleted", target.reference), dry_run),
            Err(e) if is_not_found(&e) => {
                done(format!("{} already deleted", target.reference), dry_run)
            }
            Err(e) => failed(&e),
        }
    }
}

async fn server_side_apply(
    target: &Target,
    desired: &Value,
    force: bool,
    field_manager: &str,
    validate: bool,
    dry_run: bool,
) -> WriteOutcome {
    let params = PatchParams {
        dry_run,
        force,
        field_manager: Some(field_manager.to_owned()),
        field_validation: Some(if validate {
            ValidationDirective::Strict
        } else {
            ValidationDirective::Ignore
        }),
    };
    let desired = with_port_protocols(desired);
    match target
        .api
        .patch(&target.name, &params, &Patch::Apply(desired.as_ref()))
        .await
    {
        Ok(applied) => {
            note_written(&applied);
            done(format!("{} serverside-applied", target.reference), dry_run)
        }
        Err(e) => failed(&e),
    }
}

/// kubectl apply: create with the last-applied annotation when absent, else a three-way
/// JSON merge patch; `force` deletes and re-creates when the patch fails.
async fn client_side_apply(
    target: &Target,
    desired: &Value,
    force: bool,
    dry_run: bool,
) -> WriteOutcome {
    let modified = with_last_applied(desired);
    let live = match target.api.get_opt(&target.name).await {
        Ok(live) => live,
        Err(e) => return failed(&e),
    };
    let Some(live) = live else {
        return create(target, &modified, dry_run).await;
    };
    let live = match to_value(&live) {
        Ok(live) => live,
        Err(message) => return WriteOutcome::Failed(message),
    };
    let patch = three_way_merge_patch(last_applied(&live).as_ref(), &modified, &live);
    if is_empty_patch(&patch) {
        return done(format!("{} unchanged", target.reference), dry_run);
    }
    let params = PatchParams {
        dry_run,
        field_manager: Some(CLIENT_SIDE_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match target
        .api
        .patch(&target.name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(patched) => {
            note_written(&patched);
            done(format!("{} configured", target.reference), dry_run)
        }
        Err(_) if force && !dry_run => recreate(target, &modified).await,
        Err(e) => failed(&e),
    }
}

/// Replace (PUT) with the live resourceVersion; create when absent; `force` deletes and
/// re-creates when the replace fails.
async fn replace(target: &Target, desired: &Value, force: bool, dry_run: bool) -> WriteOutcome {
    let live = match target.api.get_opt(&target.name).await {
        Ok(live) => live,
        Err(e) => return failed(&e),
    };
    let Some(live) = live else {
        return create(target, desired, dry_run).await;
    };
    let mut object = match to_object(desired) {
        Ok(object) => object,
        Err(message) => return WriteOutcome::Failed(message),
    };
    object.metadata.resource_version = live.metadata.resource_version;
    match target
        .api
        .replace(&target.name, &post_params(dry_run), &object)
        .await
    {
        Ok(replaced) => {
            note_written(&replaced);
            done(format!("{} replaced", target.reference), dry_run)
        }
        Err(_) if force && !dry_run => recreate(target, desired).await,
        Err(e) => failed(&e),
    }
}

async fn create(target: &Target, desired: &Value, dry_run: bool) -> WriteOutcome {
    let object = match to_object(desired) {
        Ok(object) => object,
        Err(message) => return WriteOutcome::Failed(message),
    };
    match target.api.create(&post_params(dry_run), &object).await {
        Ok(created) => {
            note_written(&created);
            done(format!("{} created", target.reference), dry_run)
        }
        Err(e) => failed(&e),
    }
}

/// `--force`: delete, wait (bounded) until the object is gone, create.
async fn recreate(target: &Target, desired: &Value) -> WriteOutcome {
    let params = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match target.api.delete(&target.name, &params).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return failed(&e),
    }
    for _ in 0..GONE_POLLS {
        match target.api.get_opt(&target.name).await {
            Ok(None) => {
                return match create(target, desired, false).await {
                    WriteOutcome::Ok(_) => {
                        WriteOutcome::Ok(format!("{} replaced", target.reference))
                    }
                    failure => failure,
                };
            }
            Ok(Some(_)) => tokio::time::sleep(GONE_POLL_INTERVAL).await,
            Err(e) => return failed(&e),
        }
    }
    WriteOutcome::Failed(format!(
        "{} was deleted for re-creation but did not go away",
        target.reference
    ))
}

impl ClusterOps for KubeOps {
    async fn dry_run(&self, task: &SyncTask) -> WriteOutcome {
        self.write(task, true).await
    }

    async fn apply(&self, task: &SyncTask) -> WriteOutcome {
        self.write(task, false).await
    }

    async fn delete(&self, task: &SyncTask, propagation: PropagationPolicy) -> WriteOutcome {
        self.delete_with(task, propagation, false).await
    }

    async fn get(&self, task: &SyncTask) -> Result<Option<Value>, ExecutorError> {
        let Some(target) = self.target(task).await? else {
            return Ok(None);
        };
        let live = target
            .api
            .get_opt(&target.name)
            .await
            .map_err(|source| ExecutorError::Get {
                resource: task.key.to_string(),
                source: Box::new(source),
            })?;
        match live {
            Some(object) => {
                serde_json::to_value(&object)
                    .map(Some)
                    .map_err(|e| ExecutorError::Get {
                        resource: task.key.to_string(),
                        source: Box::new(KubeError::SerdeError(e)),
                    })
            }
            None => Ok(None),
        }
    }
}
