//! The `AppProject` custom resource: allowed sources and destinations, resource
//! allow/deny lists, roles with RBAC policies, sync windows; and its validation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::{API_VERSION, ApplicationDestination};
use crate::extra::Extra;

/// Kind of [`AppProject`].
pub const APP_PROJECT_KIND: &str = "AppProject";

/// Errors from [`AppProject::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectValidationError {
    /// `metadata.name` is empty.
    #[error("project has no metadata.name")]
    MissingName,
    /// A `sourceRepos` entry is empty.
    #[error("spec.sourceRepos[{index}] is empty")]
    EmptySourceRepo {
        /// Index of the entry.
        index: usize,
    },
    /// A destination has neither `server` nor `name`.
    #[error("spec.destinations[{index}] has neither server nor name")]
    DestinationTarget {
        /// Index of the entry.
        index: usize,
    },
    /// A resource list entry has no `kind`.
    #[error("spec.{list}[{index}] has no kind")]
    GroupKindKind {
        /// Which list (`clusterResourceWhitelist`, ...).
        list: &'static str,
        /// Index of the entry.
        index: usize,
    },
    /// A role has an empty name.
    #[error("spec.roles[{index}] has no name")]
    RoleName {
        /// Index of the role.
        index: usize,
    },
    /// Two roles share a name.
    #[error("role {0:?} is defined more than once")]
    DuplicateRole(String),
    /// A role policy is malformed or does not apply to its own project and role.
    #[error("policy {policy:?} of role {role:?} is invalid: {reason}")]
    RolePolicy {
        /// Role name.
        role: String,
        /// The policy line.
        policy: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A sync window is incomplete or has an unknown kind.
    #[error("spec.syncWindows[{index}] is invalid: {reason}")]
    SyncWindow {
        /// Index of the window.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// An Argo CD AppProject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProject {
    /// Always `argoproj.io/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Always `AppProject`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Project policy.
    #[serde(default)]
    pub spec: AppProjectSpec,
    /// Observed state (JWT tokens by role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AppProjectStatus>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

fn default_api_version() -> String {
    API_VERSION.to_owned()
}

fn default_kind() -> String {
    APP_PROJECT_KIND.to_owned()
}

impl AppProject {
    /// A new AppProject with the given name, namespace and spec.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        spec: AppProjectSpec,
    ) -> Self {
        AppProject {
            api_version: default_api_version(),
            kind: default_kind(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
            extra: Extra::new(),
        }
    }

    /// Checks the project for the mistakes Argo CD rejects.
    pub fn validate(&self) -> Result<(), ProjectValidationError> {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ProjectValidationError::MissingName);
        }
        let spec = &self.spec;
        for (index, repo) in spec.source_repos.iter().flatten().enumerate() {
            if repo.trim().is_empty() {
                return Err(ProjectValidationError::EmptySourceRepo { index });
            }
        }
        for (index, dest) in spec.destinations.iter().flatten().enumerate() {
            if dest.server().is_none() && dest.name().is_none() {
                return Err(ProjectValidationError::DestinationTarget { index });
            }
        }
        let lists = [
            ("clusterResourceWhitelist", &spec.cluster_resource_whitelist),
            ("clusterResourceBlacklist", &spec.cluster_resource_blacklist),
            (
                "namespaceResourceWhitelist",
                &spec.namespace_resource_whitelist,
            ),
            (
                "namespaceResourceBlacklist",
                &spec.namespace_resource_blacklist,
            ),
        ];
        for (list, entries) in lists {
            if let Some(index) = entries.iter().flatten().position(|gk| gk.kind.is_empty()) {
                return Err(ProjectValidationError::GroupKindKind { list, index });
            }
        }
        validate_roles(name, spec.roles.as_deref().unwrap_or_default())?;
        for (index, window) in spec.sync_windows.iter().flatten().enumerate() {
            if let Some(reason) = window.problem() {
                return Err(ProjectValidationError::SyncWindow { index, reason });
            }
        }
        Ok(())
    }
}

fn validate_roles(project: &str, roles: &[ProjectRole]) -> Result<(), ProjectValidationError> {
    let mut seen = BTreeSet::new();
    for (index, role) in roles.iter().enumerate() {
        if role.name.is_empty() {
            return Err(ProjectValidationError::RoleName { index });
        }
        if !seen.insert(role.name.as_str()) {
            return Err(ProjectValidationError::DuplicateRole(role.name.clone()));
        }
        for policy in role.policies.iter().flatten() {
            validate_policy(project, &role.name, policy)?;
        }
    }
    Ok(())
}

/// Checks one Casbin policy line of a project role:
/// `p, proj:<project>:<role>, <resource>, <action>, <project>/<object>, allow|deny`.
pub fn validate_policy(
    project: &str,
    role: &str,
    policy: &str,
) -> Result<(), ProjectValidationError> {
    policy_problem(project, role, policy).map_err(|reason| ProjectValidationError::RolePolicy {
        role: role.to_owned(),
        policy: policy.to_owned(),
        reason,
    })
}

fn policy_problem(project: &str, role: &str, policy: &str) -> Result<(), String> {
    let parts: Vec<&str> = policy.split(',').map(str::trim).collect();
    let [kind, subject, _resource, _action, object, effect] = parts.as_slice() else {
        return Err(format!(
            "expected 6 comma-separated fields, found {}",
            parts.len()
        ));
    };
    if *kind != "p" {
        return Err(format!("policy type must be \"p\", not {kind:?}"));
    }
    let expected_subject = format!("proj:{project}:{role}");
    if *subject != expected_subject {
        return Err(format!(
            "subject must be {expected_subject:?}, not {subject:?}"
        ));
    }
    if !object.starts_with(&format!("{project}/")) {
        return Err(format!(
            "object must start with \"{project}/\", not {object:?}"
        ));
    }
    if *effect != "allow" && *effect != "deny" {
        return Err(format!("effect must be allow or deny, not {effect:?}"));
    }
    Ok(())
}

/// `AppProject.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    /// Allowed source repository URLs (globs; `*` allows all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_repos: Option<Vec<String>>,
    /// Namespaces (globs) whose Applications may use this project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_namespaces: Option<Vec<String>>,
    /// Allowed destinations (server or name, namespace; globs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<ApplicationDestination>>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Project roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<ProjectRole>>,
    /// Cluster-scoped kinds allowed (nothing allowed when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_resource_whitelist: Option<Vec<GroupKind>>,
    /// Cluster-scoped kinds denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_resource_blacklist: Option<Vec<GroupKind>>,
    /// Namespaced kinds allowed (everything when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    /// Namespaced kinds denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_resource_blacklist: Option<Vec<GroupKind>>,
    /// Orphaned-resource monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphaned_resources: Option<OrphanedResourcesMonitorSettings>,
    /// Sync windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<Vec<SyncWindow>>,
    /// GPG keys that commits must be signed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_keys: Option<Vec<SignatureKey>>,
    /// Fields Keelson does not model (e.g. `destinationServiceAccounts`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A group/kind pair in a resource allow/deny list (`*` globs allowed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupKind {
    /// API group (`""` for core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A project role.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRole {
    /// Role name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Casbin policy lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// SSO groups bound to the role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Issued JWT tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_tokens: Option<Vec<JwtToken>>,
}

/// A JWT token issued for a project role.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JwtToken {
    /// Issued-at (Unix seconds).
    #[serde(default)]
    pub iat: i64,
    /// Expiry (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A sync window: when syncs are allowed or denied.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Cron schedule of the window start.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// Window length (Go duration, e.g. `1h`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    /// Application name globs the window applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<String>>,
    /// Namespace globs the window applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Cluster globs the window applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    /// Allow manual syncs during a deny window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_sync: Option<bool>,
    /// IANA time zone of the schedule (UTC when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Fields Keelson does not model (e.g. `andOperator`, `description`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl SyncWindow {
    /// What is wrong with the window, if anything: unknown kind, empty schedule or
    /// empty duration.
    pub fn problem(&self) -> Option<&'static str> {
        if self.kind != "allow" && self.kind != "deny" {
            Some("kind must be allow or deny")
        } else if self.schedule.trim().is_empty() {
            Some("schedule is empty")
        } else if self.duration.trim().is_empty() {
            Some("duration is empty")
        } else {
            None
        }
    }
}

/// `spec.orphanedResources`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrphanedResourcesMonitorSettings {
    /// Raise a warning condition when orphans exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<bool>,
    /// Resources never considered orphaned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<OrphanedResourceKey>>,
}

/// A resource pattern excluded from orphan detection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrphanedResourceKey {
    /// API group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A GPG signature key id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignatureKey {
    /// Key id.
    #[serde(rename = "keyID", default)]
    pub key_id: String,
}

/// `AppProject.status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectStatus {
    /// Issued JWT tokens per role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_tokens_by_role: Option<BTreeMap<String, Value>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}
