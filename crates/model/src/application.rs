//! The `Application` custom resource (`argoproj.io/v1alpha1`): top-level object with
//! `spec`, the top-level `operation` Argo CD uses to request syncs, and `status`; plus the
//! spec's destination, sync policy and ignore-differences types and spec validation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::application_status::ApplicationStatus;
use crate::extra::Extra;
use crate::operation::Operation;
use crate::source::ApplicationSource;

/// API version of all Argo CD kinds.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// API group of all Argo CD kinds.
pub const GROUP: &str = "argoproj.io";
/// API version (without group) of all Argo CD kinds.
pub const VERSION: &str = "v1alpha1";
/// Kind of [`Application`].
pub const APPLICATION_KIND: &str = "Application";

/// Errors from [`Application::validate`] / [`ApplicationSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationValidationError {
    /// `metadata.name` is empty.
    #[error("application has no metadata.name")]
    MissingName,
    /// Neither `spec.source` nor `spec.sources` (nor `spec.sourceHydrator`) is set.
    #[error("spec has neither source nor sources")]
    MissingSource,
    /// Both `spec.source` and `spec.sources` are set.
    #[error("spec has both source and sources; use one")]
    SourceAndSources,
    /// A source has an empty `repoURL`.
    #[error("{field}.repoURL is empty")]
    EmptyRepoUrl {
        /// Path of the offending source (`spec.source`, `spec.sources[1]`).
        field: String,
    },
    /// A source sets more than one of directory/helm/kustomize/plugin.
    #[error("{field} has more than one of directory, helm, kustomize, plugin")]
    MultipleSourceTypes {
        /// Path of the offending source.
        field: String,
    },
    /// Two sources use the same `ref` name.
    #[error("{field}.ref {name:?} is used by more than one source")]
    DuplicateSourceRef {
        /// Path of the second source using the name.
        field: String,
        /// The duplicated ref name.
        name: String,
    },
    /// Destination has neither `server` nor `name`.
    #[error("spec.destination has neither server nor name")]
    MissingDestination,
    /// Destination has both `server` and `name`.
    #[error("spec.destination has both server and name; use one")]
    DestinationServerAndName,
    /// An ignoreDifferences entry has no `kind`.
    #[error("spec.ignoreDifferences[{index}] has no kind")]
    IgnoreDifferencesKind {
        /// Index of the entry.
        index: usize,
    },
}

/// An Argo CD Application. `operation` lives at the top level (not in `spec`), as Argo CD
/// stores it; unknown top-level fields are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Always `argoproj.io/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Always `Application`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state.
    #[serde(default)]
    pub spec: ApplicationSpec,
    /// Requested operation (sync); set by users/CLI/automation, cleared by the controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Observed state, written by the controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

fn default_api_version() -> String {
    API_VERSION.to_owned()
}

fn default_kind() -> String {
    APPLICATION_KIND.to_owned()
}

impl Application {
    /// A new Application with the given name, namespace and spec.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        spec: ApplicationSpec,
    ) -> Self {
        Application {
            api_version: default_api_version(),
            kind: default_kind(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            spec,
            operation: None,
            status: None,
            extra: Extra::new(),
        }
    }

    /// Checks metadata and spec for the mistakes Argo CD rejects.
    pub fn validate(&self) -> Result<(), ApplicationValidationError> {
        if self.metadata.name.as_deref().is_none_or(str::is_empty) {
            return Err(ApplicationValidationError::MissingName);
        }
        self.spec.validate()
    }
}

/// `Application.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Single source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Multiple sources (takes precedence over `source` in Argo CD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Target cluster and namespace.
    #[serde(default, skip_serializing_if = "ApplicationDestination::is_empty")]
    pub destination: ApplicationDestination,
    /// AppProject name; `default` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// Sync policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    /// Differences to ignore when comparing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_differences: Option<Vec<ResourceIgnoreDifferences>>,
    /// Number of history entries to keep (Argo CD default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    /// Free-form information shown in the UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Vec<InfoEntry>>,
    /// Fields Keelson does not model (e.g. `sourceHydrator`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ApplicationSpec {
    /// The effective sources: `sources` when non-empty, else `source`, else none.
    pub fn effective_sources(&self) -> Vec<&ApplicationSource> {
        match (&self.sources, &self.source) {
            (Some(sources), _) if !sources.is_empty() => sources.iter().collect(),
            (_, Some(source)) => vec![source],
            _ => Vec::new(),
        }
    }

    /// Whether the application uses `sources` (multi-source).
    pub fn has_multiple_sources(&self) -> bool {
        self.sources.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// The project name, `default` when empty.
    pub fn project_or_default(&self) -> &str {
        if self.project.is_empty() {
            "default"
        } else {
            &self.project
        }
    }

    /// Checks the spec for the mistakes Argo CD rejects.
    pub fn validate(&self) -> Result<(), ApplicationValidationError> {
        validate_sources(self)?;
        self.destination.validate()?;
        for (index, entry) in self.ignore_differences.iter().flatten().enumerate() {
            if entry.kind.is_empty() {
                return Err(ApplicationValidationError::IgnoreDifferencesKind { index });
            }
        }
        Ok(())
    }
}

fn validate_sources(spec: &ApplicationSpec) -> Result<(), ApplicationValidationError> {
    let has_sources = spec.sources.as_ref().is_some_and(|s| !s.is_empty());
    match (&spec.source, has_sources) {
        (Some(_), true) => return Err(ApplicationValidationError::SourceAndSources),
        (None, false) if !spec.extra.contains_key("sourceHydrator") => {
            return Err(ApplicationValidationError::MissingSource);
        }
        _ => {}
    }
    let mut refs = BTreeSet::new();
    let single = spec.source.iter().map(|s| ("spec.source".to_owned(), s));
    let multi = spec
        .sources
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| (format!("spec.sources[{i}]"), s));
    for (field, source) in single.chain(multi) {
        if source.repo_url.is_empty() {
            return Err(ApplicationValidationError::EmptyRepoUrl { field });
        }
        if source.explicit_types().len() > 1 {
            return Err(ApplicationValidationError::MultipleSourceTypes { field });
        }
        if let Some(name) = source.ref_.as_deref().filter(|r| !r.is_empty())
            && !refs.insert(name.to_owned())
        {
            let name = name.to_owned();
            return Err(ApplicationValidationError::DuplicateSourceRef { field, name });
        }
    }
    Ok(())
}

/// Where an application deploys to: a cluster (by `server` URL or cluster `name`) and a
/// default namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestination {
    /// Cluster API server URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Target namespace for namespaced resources without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Cluster name (alternative to `server`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ApplicationDestination {
    /// Whether no field is set at all.
    pub fn is_empty(&self) -> bool {
        self.server.is_none()
            && self.namespace.is_none()
            && self.name.is_none()
            && self.extra.is_empty()
    }

    /// The server URL when set and non-empty.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref().filter(|s| !s.is_empty())
    }

    /// The cluster name when set and non-empty.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().filter(|s| !s.is_empty())
    }

    /// Exactly one of server and name must be set.
    pub fn validate(&self) -> Result<(), ApplicationValidationError> {
        match (self.server(), self.name()) {
            (None, None) => Err(ApplicationValidationError::MissingDestination),
            (Some(_), Some(_)) => Err(ApplicationValidationError::DestinationServerAndName),
            _ => Ok(()),
        }
    }
}

/// `spec.syncPolicy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Automated sync; absent means manual sync only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automated: Option<SyncPolicyAutomated>,
    /// Sync options (`CreateNamespace=true`, `ServerSideApply=true`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_options: Option<Vec<String>>,
    /// Retry policy for failed syncs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Labels/annotations for a namespace created by `CreateNamespace=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl SyncPolicy {
    /// Whether automated sync is on (`automated` present and not `enabled: false`).
    pub fn is_automated(&self) -> bool {
        self.automated
            .as_ref()
            .is_some_and(|a| a.enabled != Some(false))
    }

    /// The value of sync option `key` (`CreateNamespace=true` → `Some("true")`); options
    /// are matched case-sensitively like Argo CD. The last occurrence wins.
    pub fn sync_option(&self, key: &str) -> Option<&str> {
        sync_option(self.sync_options.as_deref().unwrap_or_default(), key)
    }
}

/// The value of `key` in a list of `Key=Value` sync options; the last occurrence wins.
pub fn sync_option<'a>(options: &'a [String], key: &str) -> Option<&'a str> {
    options.iter().rev().find_map(|opt| {
        let (k, v) = opt.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `spec.syncPolicy.automated`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicyAutomated {
    /// Delete resources no longer in Git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// Re-sync when the live state drifts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_heal: Option<bool>,
    /// Allow syncing to an empty set of resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// Explicit on/off switch (Argo CD 3.x); absent means on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Retry policy (`syncPolicy.retry`, `operation.retry`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Maximum attempts; negative means unlimited, 0 means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Backoff between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Use the latest revision on retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Exponential backoff (`retry.backoff`); durations are Go duration strings (`5s`, `3m`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay (default `5s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Multiplier per attempt (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    /// Cap on the delay (default `3m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// `syncPolicy.managedNamespaceMetadata`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedNamespaceMetadata {
    /// Labels to set on the namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to set on the namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One `spec.ignoreDifferences` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    /// API group (`""` for core; absent also means core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Restrict to objects with this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Restrict to objects in this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// JSON pointers (RFC 6901) to ignore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_pointers: Option<Vec<String>>,
    /// jq path expressions to ignore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jq_path_expressions: Option<Vec<String>>,
    /// Ignore fields owned by these field managers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_fields_managers: Option<Vec<String>>,
}

/// A `name`/`value` pair in `spec.info` or `operation.info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InfoEntry {
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
