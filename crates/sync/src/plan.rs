//! The planner: `plan_sync` turns resources (desired, live, diff result), options and the
//! operation request into an ordered list of tasks. Pure: data in, data out.

use std::collections::BTreeSet;

use keelson_model::ResourceKey;
use keelson_model::operation::{SyncOperation, SyncOperationResource, SyncPhase};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::SyncPlanError;
use crate::hooks::{HookRole, HookSpec, hook_name, hook_role, hook_type_of};
use crate::options::{DEFAULT_FIELD_MANAGER, Permission, ResourceSyncOptions, SyncOptions};
use crate::task::{ApplyMethod, HookTask, SyncTask, TaskId, TaskOperation};
use crate::waves::{
    apply_prune_last, move_dependencies_first, reverse_prune_waves, sort_tasks, wave_of,
};

/// One resource known to the sync: managed resources and hooks alike.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceInput {
    /// Identity (for a hook with only `generateName`, the name is empty).
    pub key: ResourceKey,
    /// Desired object from Git, if any.
    pub desired: Option<Value>,
    /// Live object, if any.
    pub live: Option<Value>,
    /// Whether the diff found desired and live different.
    pub modified: bool,
    /// Live, not desired, and tracked by the app: a candidate for pruning.
    pub requires_pruning: bool,
    /// Another application that also tracks this resource (`FailOnSharedResource`).
    pub shared_with: Option<String>,
}

/// Sync strategy (`operation.sync.syncStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Strategy {
    /// Hooks run in their phases (the default).
    #[default]
    Hook,
    /// Apply only: hooks are not run.
    Apply,
}

/// What the operation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Delete resources no longer desired.
    pub prune: bool,
    /// Only validate (dry-run) every task.
    pub dry_run: bool,
    /// Selective sync: only these resources (and then, like Argo CD, no hooks).
    pub resources: Option<Vec<SyncOperationResource>>,
    /// Apply or hook strategy.
    pub strategy: Strategy,
    /// `syncStrategy.{apply,hook}.force`.
    pub force: bool,
    /// The application's destination namespace (`""` if none).
    pub destination_namespace: String,
}

impl SyncRequest {
    /// Builds the request from `operation.sync` and the destination namespace.
    pub fn from_operation(op: &SyncOperation, destination_namespace: &str) -> Self {
        let strategy = op.sync_strategy.as_ref();
        let apply = strategy.and_then(|s| s.apply.as_ref());
        let hook = strategy.and_then(|s| s.hook.as_ref());
        SyncRequest {
            prune: op.prune.unwrap_or(false),
            dry_run: op.dry_run.unwrap_or(false),
            resources: op.resources.clone().filter(|r| !r.is_empty()),
            strategy: if apply.is_some() && hook.is_none() {
                Strategy::Apply
            } else {
                Strategy::Hook
            },
            force: apply.or(hook).and_then(|o| o.force).unwrap_or(false),
            destination_namespace: destination_namespace.to_owned(),
        }
    }
}

/// Everything the planner needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Identity of this sync operation; hooks with `generateName` are named from it, so
    /// it must stay the same when an operation is resumed.
    pub sync_id: String,
    /// Managed resources and hooks.
    pub resources: Vec<ResourceInput>,
    /// Application-level sync options.
    pub options: SyncOptions,
    /// The operation's request.
    pub request: SyncRequest,
    /// Field manager for server-side apply.
    pub field_manager: String,
    /// Whether server-side apply is used when neither the app nor the resource says.
    pub server_side_apply_by_default: bool,
    /// Live destination namespace, when `CreateNamespace=true` (None: it does not exist).
    pub destination_namespace_live: Option<Value>,
}

impl PlanInput {
    /// An input with Keelson's defaults: field manager `argocd-controller`, server-side
    /// apply by default, no options.
    pub fn new(sync_id: impl Into<String>, resources: Vec<ResourceInput>) -> Self {
        PlanInput {
            sync_id: sync_id.into(),
            resources,
            options: SyncOptions::default(),
            request: SyncRequest::default(),
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            server_side_apply_by_default: true,
            destination_namespace_live: None,
        }
    }
}

/// An ordered plan. Tasks are in execution order: by phase, then wave, then kind order
/// and name, with Namespace/CRD dependencies moved before their users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The sync id the plan was made for.
    pub sync_id: String,
    /// Only dry-run the tasks.
    pub dry_run: bool,
    /// Some prune task needs a user confirmation (`Prune=confirm`) before it may run.
    pub requires_prune_confirmation: bool,
    /// The tasks.
    pub tasks: Vec<SyncTask>,
}

impl Plan {
    /// The task with this id.
    pub fn task(&self, id: &TaskId) -> Option<&SyncTask> {
        self.tasks.iter().find(|t| &t.id == id)
    }
}

/// Builds the plan. See the crate docs for the rules.
pub fn plan_sync(input: &PlanInput) -> Result<Plan, SyncPlanError> {
    let skip_hooks = input.request.strategy == Strategy::Apply || input.request.resources.is_some();
    let mut tasks = Vec::new();
    let mut requires_prune_confirmation = false;
    for resource in input.resources.iter().filter(|r| selected(input, r)) {
        if input.options.fail_on_shared_resource
            && let Some(other) = &resource.shared_with
        {
            return Err(SyncPlanError::SharedResource {
                resource: resource.key.to_string(),
                other_app: other.clone(),
            });
        }
        let planned = plan_resource(input, resource, skip_hooks)?;
        requires_prune_confirmation |= planned.needs_confirmation;
        tasks.extend(planned.tasks);
    }
    if let Some(task) = namespace_task(input) {
        tasks.push(task);
    }
    mark_crd_dependents(&mut tasks);
    check_unique(&tasks)?;
    finish_order(input, &mut tasks);
    Ok(Plan {
        sync_id: input.sync_id.clone(),
        dry_run: input.request.dry_run,
        requires_prune_confirmation,
        tasks,
    })
}

/// Selective sync filter (Argo CD: same group, kind and name; namespace if given).
fn selected(input: &PlanInput, resource: &ResourceInput) -> bool {
    let Some(wanted) = &input.request.resources else {
        return true;
    };
    wanted.iter().any(|w| {
        w.group.as_deref().unwrap_or("") == resource.key.group
            && w.kind == resource.key.kind
            && w.name == resource.key.name
            && w.namespace
                .as_deref()
                .is_none_or(|ns| ns.is_empty() || ns == resource.key.namespace)
    })
}

struct PlannedResource {
    tasks: Vec<SyncTask>,
    needs_confirmation: bool,
}

fn plan_resource(
    input: &PlanInput,
    resource: &ResourceInput,
    skip_hooks: bool,
) -> Result<PlannedResource, SyncPlanError> {
    let none = PlannedResource {
        tasks: Vec::new(),
        needs_confirmation: false,
    };
    let Some(object) = resource.desired.as_ref().or(resource.live.as_ref()) else {
        return Ok(none);
    };
    match hook_role(&resource.key, object)? {
        HookRole::Skipped => Ok(none),
        HookRole::Hook(spec) if resource.desired.is_some() && !skip_hooks => Ok(PlannedResource {
            tasks: hook_tasks(input, resource, &spec)?,
            needs_confirmation: false,
        }),
        HookRole::Hook(_) => Ok(none),
        HookRole::Resource => match &resource.desired {
            Some(desired) => Ok(PlannedResource {
                tasks: apply_task(input, resource, desired)?.into_iter().collect(),
                needs_confirmation: false,
            }),
            None if resource.requires_pruning => prune_task(input, resource, object),
            None => Ok(none),
        },
    }
}

fn api_version(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn apply_task(
    input: &PlanInput,
    resource: &ResourceInput,
    desired: &Value,
) -> Result<Option<SyncTask>, SyncPlanError> {
    if input.options.apply_out_of_sync_only && !resource.modified && resource.live.is_some() {
        return Ok(None);
    }
    let wave = wave_of(&resource.key, desired)?;
    let operation = apply_operation(input, &resource.key, desired, resource.live.is_some())?;
    Ok(Some(SyncTask {
        id: TaskId::new(SyncPhase::Sync, &resource.key),
        key: resource.key.clone(),
        api_version: api_version(desired),
        phase: SyncPhase::Sync,
        wave,
        operation,
        hook: None,
        desired: Some(desired.clone()),
        live: resource.live.clone(),
    }))
}

fn apply_operation(
    input: &PlanInput,
    key: &ResourceKey,
    desired: &Value,
    live_exists: bool,
) -> Result<TaskOperation, SyncPlanError> {
    let own = ResourceSyncOptions::of_object(desired).map_err(|source| {
        SyncPlanError::BadResourceSyncOption {
            resource: key.to_string(),
            source: Box::new(source),
        }
    })?;
    let app = &input.options;
    let force = input.request.force || own.force;
    let replace = own.replace.unwrap_or(app.replace);
    let server_side = own
        .server_side_apply
        .or(app.server_side_apply)
        .unwrap_or(input.server_side_apply_by_default);
    let method = match (replace, live_exists) {
        (true, true) if is_namespace_or_crd(key) => ApplyMethod::Update,
        (true, true) => ApplyMethod::Replace { force },
        (true, false) => ApplyMethod::Create,
        // The controller's field manager always takes ownership of conflicting fields
        // (Argo CD passes --force-conflicts): Git wins over other writers.
        (false, _) if server_side => ApplyMethod::ServerSide {
            force: true,
            field_manager: input.field_manager.clone(),
        },
        (false, _) => ApplyMethod::ClientSide { force },
    };
    Ok(TaskOperation::Apply {
        method,
        validate: own.validate.unwrap_or(app.validate),
        skip_dry_run_on_missing_resource: app.skip_dry_run_on_missing_resource
            || own.skip_dry_run_on_missing_resource,
    })
}

fn is_namespace_or_crd(key: &ResourceKey) -> bool {
    (key.group.is_empty() && key.kind == "Namespace")
        || (key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition")
}

fn prune_task(
    input: &PlanInput,
    resource: &ResourceInput,
    live: &Value,
) -> Result<PlannedResource, SyncPlanError> {
    let own = ResourceSyncOptions::of_object(live).map_err(|source| {
        SyncPlanError::BadResourceSyncOption {
            resource: resource.key.to_string(),
            source: Box::new(source),
        }
    })?;
    let operation = if !input.request.prune {
        TaskOperation::PruneSkipped {
            message: "ignored (requires pruning)".to_owned(),
        }
    } else if own.prune == Permission::Disabled {
        TaskOperation::PruneSkipped {
            message: "ignored (no prune)".to_owned(),
        }
    } else {
        TaskOperation::Prune {
            propagation: input.options.prune_propagation_policy,
        }
    };
    let needs_confirmation =
        own.prune == Permission::Confirm && matches!(operation, TaskOperation::Prune { .. });
    let task = SyncTask {
        id: TaskId::new(SyncPhase::Sync, &resource.key),
        key: resource.key.clone(),
        api_version: api_version(live),
        phase: SyncPhase::Sync,
        wave: wave_of(&resource.key, live)?,
        operation,
        hook: None,
        desired: None,
        live: Some(live.clone()),
    };
    Ok(PlannedResource {
        tasks: vec![task],
        needs_confirmation,
    })
}

fn hook_tasks(
    input: &PlanInput,
    resource: &ResourceInput,
    spec: &HookSpec,
) -> Result<Vec<SyncTask>, SyncPlanError> {
    let Some(desired) = &resource.desired else {
        return Ok(Vec::new());
    };
    let wave = wave_of(&resource.key, desired)?;
    let mut tasks = Vec::new();
    for phase in spec.sync_phases() {
        let name = hook_name(desired, &input.sync_id, phase).ok_or_else(|| {
            SyncPlanError::HookWithoutName {
                resource: resource.key.to_string(),
            }
        })?;
        let key = ResourceKey {
            name: name.clone(),
            ..resource.key.clone()
        };
        let mut object = desired.clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("name".to_owned(), Value::String(name));
        }
        let operation = apply_operation(input, &key, &object, resource.live.is_some())?;
        tasks.push(SyncTask {
            id: TaskId::new(phase, &key),
            api_version: api_version(&object),
            key,
            phase,
            wave,
            operation,
            hook: Some(HookTask {
                hook_type: hook_type_of(phase),
                delete_policies: spec.delete_policies.clone(),
            }),
            desired: Some(object),
            live: resource.live.clone(),
        });
    }
    Ok(tasks)
}

/// `CreateNamespace=true`: a PreSync task creating the destination namespace, unless it
/// is among the desired objects or already exists.
fn namespace_task(input: &PlanInput) -> Option<SyncTask> {
    let namespace = &input.request.destination_namespace;
    if !input.options.create_namespace
        || namespace.is_empty()
        || input.destination_namespace_live.is_some()
    {
        return None;
    }
    let declared = input.resources.iter().any(|r| {
        r.desired.is_some()
            && r.key.group.is_empty()
            && r.key.kind == "Namespace"
            && &r.key.name == namespace
    });
    if declared {
        return None;
    }
    let key = ResourceKey::new("", "Namespace", "", namespace.clone());
    let desired = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    let operation = apply_operation(input, &key, &desired, false).ok()?;
    Some(SyncTask {
        id: TaskId::new(SyncPhase::PreSync, &key),
        key,
        api_version: "v1".to_owned(),
        phase: SyncPhase::PreSync,
        wave: 0,
        operation,
        hook: None,
        desired: Some(desired),
        live: None,
    })
}

/// Custom resources whose CRD is part of the sync may skip the dry run (the API server
/// does not know their kind yet).
fn mark_crd_dependents(tasks: &mut [SyncTask]) {
    let defined: BTreeSet<(String, String)> = tasks
        .iter()
        .filter(|t| t.key.kind == "CustomResourceDefinition")
        .filter_map(|t| {
            let spec = t.desired.as_ref()?.get("spec")?;
            let group = spec.get("group")?.as_str()?;
            let kind = spec.get("names")?.get("kind")?.as_str()?;
            Some((group.to_owned(), kind.to_owned()))
        })
        .collect();
    for task in tasks.iter_mut() {
        if let TaskOperation::Apply {
            skip_dry_run_on_missing_resource,
            ..
        } = &mut task.operation
            && defined.contains(&(task.key.group.clone(), task.key.kind.clone()))
        {
            *skip_dry_run_on_missing_resource = true;
        }
    }
}

fn check_unique(tasks: &[SyncTask]) -> Result<(), SyncPlanError> {
    let mut seen = BTreeSet::new();
    for task in tasks {
        if !seen.insert(&task.id) {
            return Err(SyncPlanError::DuplicateTask {
                resource: task.key.to_string(),
                phase: task.phase,
            });
        }
    }
    Ok(())
}

/// Prune wave reversal, PruneLast, sort, then dependency moves.
fn finish_order(input: &PlanInput, tasks: &mut Vec<SyncTask>) {
    reverse_prune_waves(tasks);
    let app_prune_last = input.options.prune_last;
    apply_prune_last(tasks, |task| {
        app_prune_last
            || task
                .live
                .as_ref()
                .and_then(|live| ResourceSyncOptions::of_object(live).ok())
                .is_some_and(|o| o.prune_last)
    });
    sort_tasks(tasks);
    move_dependencies_first(tasks);
}
