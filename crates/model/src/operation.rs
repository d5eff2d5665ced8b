//! Application operations: the requested `operation` (top level of an Application) and
//! the `status.operationState` that records its progress and result, including
//! Keelson's `keelsonHolder` extension.

use serde::{Deserialize, Serialize};

use crate::application::{InfoEntry, ManagedNamespaceMetadata, RetryStrategy};
use crate::extra::Extra;
use crate::source::ApplicationSource;
use crate::status_codes::{HookType, OperationPhase};
use crate::string_enum::string_enum;

/// A requested operation (`Application.operation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Sync request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncOperation>,
    /// Who asked for the operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// Free-form information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Vec<InfoEntry>>,
    /// Retry policy for this operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `operation.sync`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// Revision to sync to (single source); the target revision when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Revisions to sync to, one per source (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<Vec<String>>,
    /// Delete resources no longer in Git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// Do not change the cluster; only report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Restrict the sync to these resources (selective sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<SyncOperationResource>>,
    /// Apply or hook strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_strategy: Option<SyncStrategy>,
    /// Sync options overriding `spec.syncPolicy.syncOptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_options: Option<Vec<String>>,
    /// Source override (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Source overrides (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Local manifests to sync instead of generating them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<String>>,
    /// Fields Keelson does not model (e.g. `autoHealAttemptsCount`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A resource selected for a selective sync.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResource {
    /// API group (`""` for core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `operation.sync.syncStrategy`: `apply` (kubectl apply only) or `hook` (default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStrategy {
    /// Apply-only strategy: hooks are not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<SyncStrategyOptions>,
    /// Hook strategy: hooks run in their phases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<SyncStrategyOptions>,
}

/// Options of either sync strategy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStrategyOptions {
    /// Delete and re-create resources that cannot be patched (`--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// `operation.initiatedBy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationInitiator {
    /// User who started the operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether the controller started it (automated sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automated: Option<bool>,
}

/// `status.operationState`: progress and result of the current or last operation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// The operation being (or that was) carried out.
    #[serde(default)]
    pub operation: Operation,
    /// Current phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<OperationPhase>,
    /// Human-readable progress or result message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Result of a sync operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_result: Option<SyncOperationResult>,
    /// RFC 3339 start time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 finish time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Number of retries done so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<i64>,
    /// **Keelson extension** (not in Argo CD): identity of the controller replica that
    /// holds the claim on this operation (the replica running the sync). Other replicas
    /// use it to tell a live operation from one orphaned by a dead replica. Argo CD
    /// ignores the field; absent on operations Argo CD started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keelson_holder: Option<String>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `operationState.syncResult`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    /// Per-resource results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceResult>>,
    /// Revision synced (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Revisions synced (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<Vec<String>>,
    /// Source synced (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources synced (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Managed namespace metadata applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

string_enum! {
    /// Outcome of syncing one resource (`syncResult.resources[].status`).
    pub enum ResultCode ("resource result code") {
        /// Applied successfully.
        Synced => "Synced",
        /// Apply failed.
        SyncFailed => "SyncFailed",
        /// Deleted because no longer desired.
        Pruned => "Pruned",
        /// Would be pruned, but pruning was disabled.
        PruneSkipped => "PruneSkipped",
    }
}

string_enum! {
    /// Phase of a sync in which a resource was handled.
    pub enum SyncPhase ("sync phase") {
        /// Before the main sync.
        PreSync => "PreSync",
        /// The main sync.
        Sync => "Sync",
        /// After a successful main sync.
        PostSync => "PostSync",
        /// After a failed sync.
        SyncFail => "SyncFail",
    }
}

/// Result of syncing one resource (`syncResult.resources[]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// API group (Argo CD always writes it, `""` for core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace (Argo CD always writes it, `""` for cluster-scoped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultCode>,
    /// Message from apply/prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Hook type when the resource is a hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<HookType>,
    /// Hook progress when the resource is a hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<OperationPhase>,
    /// Phase in which the resource was synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_phase: Option<SyncPhase>,
    /// Fields Keelson does not model (e.g. `images`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}
