//! `SyncTask`: one unit of a plan — apply an object, prune one, or record a prune that
//! is skipped — with its phase, wave, hook data and how it is applied.

use std::fmt;

use keelson_model::operation::SyncPhase;
use keelson_model::{HookDeletePolicy, HookType, ResourceKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options::PropagationPolicy;

/// Stable identity of a task within a plan: `<phase>:<group>/<kind>/<namespace>/<name>`.
/// Used as the key of observed results, so it must not depend on anything but the plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// The id of the task for `key` in `phase`.
    pub fn new(phase: SyncPhase, key: &ResourceKey) -> Self {
        TaskId(format!("{phase}:{key}"))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an object is written to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyMethod {
    /// Server-side apply with this field manager (Keelson's default).
    ServerSide {
        /// Take ownership of conflicting fields (`--force-conflicts`).
        force: bool,
        /// Field manager name (`argocd-controller` by default).
        field_manager: String,
    },
    /// Client-side apply (`ServerSideApply=false`).
    ClientSide {
        /// Delete and re-create when the patch fails (`--force`).
        force: bool,
    },
    /// Replace the live object (`Replace=true` and the object exists).
    Replace {
        /// Delete and re-create when the replace fails.
        force: bool,
    },
    /// Update with the live resourceVersion: `Replace=true` on an existing CRD or
    /// Namespace, where a delete/re-create would destroy everything inside it.
    Update,
    /// Create (`Replace=true` and the object does not exist yet).
    Create,
}

/// What a task does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOperation {
    /// Write the desired object.
    Apply {
        /// Apply method.
        method: ApplyMethod,
        /// Validate against the schema (`Validate=false` turns it off).
        validate: bool,
        /// The dry run may be skipped when the kind is not known to the API server yet
        /// (`SkipDryRunOnMissingResource=true`, or its CRD is part of this sync).
        skip_dry_run_on_missing_resource: bool,
    },
    /// Delete the live object.
    Prune {
        /// Deletion propagation.
        propagation: PropagationPolicy,
    },
    /// Nothing is done; the task completes at once with result `PruneSkipped` and this
    /// message (`ignored (requires pruning)` or `ignored (no prune)`).
    PruneSkipped {
        /// Result message.
        message: String,
    },
}

/// Hook data of a hook task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookTask {
    /// The hook type this task runs as (one task per phase of a multi-phase hook).
    pub hook_type: HookType,
    /// Delete policies.
    pub delete_policies: Vec<HookDeletePolicy>,
}

impl HookTask {
    /// Whether the policies include `policy`.
    pub fn has_policy(&self, policy: HookDeletePolicy) -> bool {
        self.delete_policies.contains(&policy)
    }
}

/// One planned task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncTask {
    /// Identity (key of observed results).
    pub id: TaskId,
    /// The resource (for hooks with `generateName`: with the generated name).
    pub key: ResourceKey,
    /// API version (`v1`, `apps/v1`) of the desired or live object, `""` if unknown.
    pub api_version: String,
    /// Phase.
    pub phase: SyncPhase,
    /// Effective wave (after dependency moves, prune reversal and PruneLast).
    pub wave: i32,
    /// What the task does.
    pub operation: TaskOperation,
    /// Hook data when the task is a hook.
    pub hook: Option<HookTask>,
    /// Object to write (for hooks with `generateName`: with `metadata.name` set).
    pub desired: Option<Value>,
    /// Live object observed when planning.
    pub live: Option<Value>,
}

impl SyncTask {
    /// Whether the task is a hook.
    pub fn is_hook(&self) -> bool {
        self.hook.is_some()
    }

    /// Whether the task deletes the live object.
    pub fn is_prune(&self) -> bool {
        matches!(self.operation, TaskOperation::Prune { .. })
    }

    /// Whether the task completes without any action.
    pub fn is_noop(&self) -> bool {
        matches!(self.operation, TaskOperation::PruneSkipped { .. })
    }

    /// Whether an older copy of this hook must be deleted before it is created: it has
    /// the `BeforeHookCreation` policy and a live object existed when planning.
    pub fn needs_delete_before_creation(&self) -> bool {
        self.live.is_some()
            && self
                .hook
                .as_ref()
                .is_some_and(|h| h.has_policy(HookDeletePolicy::BeforeHookCreation))
    }

    /// The version part of the API version (`apps/v1` → `v1`).
    pub fn version(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((_, version)) => version,
            None => &self.api_version,
        }
    }
}
