//! `Application.status`: sync and health summaries, per-resource status, conditions,
//! history and the operation state, as written by the controller.

use serde::{Deserialize, Serialize};

use crate::application::{ApplicationDestination, ResourceIgnoreDifferences};
use crate::extra::Extra;
use crate::operation::{OperationInitiator, OperationState};
use crate::resource_key::ResourceKey;
use crate::source::ApplicationSource;
use crate::status_codes::{HealthStatusCode, SyncStatusCode};

/// Condition type: manifests could not be generated or compared.
pub const CONDITION_COMPARISON_ERROR: &str = "ComparisonError";
/// Condition type: the sync failed.
pub const CONDITION_SYNC_ERROR: &str = "SyncError";
/// Condition type: the application spec is invalid.
pub const CONDITION_INVALID_SPEC_ERROR: &str = "InvalidSpecError";
/// Condition type: an unknown error happened.
pub const CONDITION_UNKNOWN_ERROR: &str = "UnknownError";
/// Condition type: a resource is managed by more than one application.
pub const CONDITION_SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
/// Condition type: the app has orphaned resources in its namespace.
pub const CONDITION_ORPHANED_RESOURCE_WARNING: &str = "OrphanedResourceWarning";
/// Condition type: some resources were excluded from sync.
pub const CONDITION_EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
/// Condition type: automated sync would sync to an empty set and was refused.
pub const CONDITION_SYNC_ALLOWED_EMPTY_WARNING: &str = "SyncAllowedEmptyWarning";
/// Condition type: a repeated sync was skipped.
pub const CONDITION_REPEATED_RESOURCE_WARNING: &str = "RepeatedResourceWarning";
/// Condition type: deletion of the application failed.
pub const CONDITION_DELETION_ERROR: &str = "DeletionError";

/// `Application.status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// Managed resources and their sync/health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceStatus>>,
    /// Overall sync status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    /// Overall health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Deployment history, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<RevisionHistory>>,
    /// Errors and warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ApplicationCondition>>,
    /// RFC 3339 time of the last reconcile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<String>,
    /// Progress/result of the current or last operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<OperationState>,
    /// RFC 3339 time the live state was observed (deprecated in Argo CD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// Tool used for the source (`Helm`, `Kustomize`, `Directory`, `Plugin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// Tools used, one per source (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_types: Option<Vec<String>>,
    /// External URLs and images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ApplicationSummary>,
    /// Where resource health is stored (`appTree` in newer Argo CD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_health_source: Option<String>,
    /// Namespace of the controller that manages the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_namespace: Option<String>,
    /// Fields Keelson does not model (e.g. `sourceHydrator`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `status.sync`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Synced / OutOfSync / Unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatusCode>,
    /// What the comparison was made against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_to: Option<ComparedTo>,
    /// Resolved revision (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Resolved revisions (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<Vec<String>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `status.sync.comparedTo`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparedTo {
    /// Source compared (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources compared (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Destination compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<ApplicationDestination>,
    /// Ignore rules in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_differences: Option<Vec<ResourceIgnoreDifferences>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Health of an application or of one resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Health code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<HealthStatusCode>,
    /// Explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time the status last changed (newer Argo CD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// One managed resource in `status.resources`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group (`""` or absent for core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace (absent or `""` for cluster-scoped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Sync status of this resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatusCode>,
    /// Health of this resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Whether the resource is a hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<bool>,
    /// Whether the resource is no longer desired and would be pruned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_pruning: Option<bool>,
    /// Sync wave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_wave: Option<i64>,
    /// Fields Keelson does not model (e.g. `requiresDeletionConfirmation`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ResourceStatus {
    /// The resource's key (group, kind, namespace, name).
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(
            self.group.clone().unwrap_or_default(),
            self.kind.clone(),
            self.namespace.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

/// One `status.conditions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCondition {
    /// Condition type (see the `CONDITION_*` constants).
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time the condition was first observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl ApplicationCondition {
    /// Whether the condition is an error (type ends in `Error`) rather than a warning.
    pub fn is_error(&self) -> bool {
        self.type_.ends_with("Error")
    }
}

/// `status.summary`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSummary {
    /// URLs of ingresses/services of the app.
    #[serde(rename = "externalURLs", skip_serializing_if = "Option::is_none")]
    pub external_urls: Option<Vec<String>>,
    /// Container images in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// One `status.history` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    /// Entry id (monotonic, from 0).
    #[serde(default)]
    pub id: i64,
    /// Revision deployed (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Revisions deployed (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<Vec<String>>,
    /// RFC 3339 time the deployment finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    /// RFC 3339 time the deployment started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_started_at: Option<String>,
    /// Source deployed (single source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources deployed (multi-source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Who started the deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}
