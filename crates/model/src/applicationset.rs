//! The `ApplicationSet` custom resource: generators (list, clusters, git, matrix, merge
//! typed; the others kept as JSON), the Application template, policies, and validation.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::{API_VERSION, ApplicationSpec};
use crate::extra::Extra;

/// Kind of [`ApplicationSet`].
pub const APPLICATION_SET_KIND: &str = "ApplicationSet";

/// Errors from [`ApplicationSet::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationSetValidationError {
    /// `metadata.name` is empty.
    #[error("applicationset has no metadata.name")]
    MissingName,
    /// `spec.generators` is empty.
    #[error("spec.generators is empty")]
    NoGenerators,
    /// A generator sets no generator kind, or more than one.
    #[error("{field} must set exactly one generator kind, found {found:?}")]
    GeneratorKinds {
        /// Path of the generator (`spec.generators[0].matrix.generators[1]`).
        field: String,
        /// The kinds found.
        found: Vec<&'static str>,
    },
    /// A matrix generator does not have exactly two child generators.
    #[error("{field}.matrix must have exactly 2 generators, found {count}")]
    MatrixChildren {
        /// Path of the generator.
        field: String,
        /// Number of children.
        count: usize,
    },
    /// A merge generator has fewer than two children or no merge keys.
    #[error("{field}.merge needs at least 2 generators and at least one merge key")]
    MergeShape {
        /// Path of the generator.
        field: String,
    },
    /// `spec.template` is missing.
    #[error("spec.template is missing")]
    MissingTemplate,
    /// Generators nest deeper than Argo CD allows (a generator inside a matrix/merge
    /// inside a matrix/merge inside ...).
    #[error("{field} nests matrix/merge generators too deeply")]
    NestingDepth {
        /// Path of the generator.
        field: String,
    },
}

/// Maximum depth of matrix/merge nesting accepted by validation.
const MAX_NESTING: usize = 3;

/// An Argo CD ApplicationSet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSet {
    /// Always `argoproj.io/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Always `ApplicationSet`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Generators and template.
    #[serde(default)]
    pub spec: ApplicationSetSpec,
    /// Observed state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationSetStatus>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

fn default_api_version() -> String {
    API_VERSION.to_owned()
}

fn default_kind() -> String {
    APPLICATION_SET_KIND.to_owned()
}

impl ApplicationSet {
    /// Checks the ApplicationSet for the mistakes Argo CD rejects. Template contents are
    /// not validated: they may hold `{{...}}` placeholders.
    pub fn validate(&self) -> Result<(), ApplicationSetValidationError> {
        if self.metadata.name.as_deref().is_none_or(str::is_empty) {
            return Err(ApplicationSetValidationError::MissingName);
        }
        let generators = self.spec.generators.as_deref().unwrap_or_default();
        if generators.is_empty() {
            return Err(ApplicationSetValidationError::NoGenerators);
        }
        for (i, generator) in generators.iter().enumerate() {
            generator.validate(&format!("spec.generators[{i}]"), 0)?;
        }
        if self.spec.template.is_none() {
            return Err(ApplicationSetValidationError::MissingTemplate);
        }
        Ok(())
    }
}

/// `ApplicationSet.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSpec {
    /// Use Go templates (`{{.name}}`) instead of fasttemplate (`{{name}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_template: Option<bool>,
    /// Go template options (e.g. `missingkey=error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_template_options: Option<Vec<String>>,
    /// Parameter generators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generators: Option<Vec<ApplicationSetGenerator>>,
    /// Application template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Go-template patch applied to each rendered Application (YAML/JSON string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,
    /// Create/update/delete policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<ApplicationSetSyncPolicy>,
    /// Rollout strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ApplicationSetStrategy>,
    /// Fields Keelson does not model (`preservedFields`, `ignoreApplicationDifferences`, ...).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// An Application template (`spec.template`, or a generator's override).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetTemplate {
    /// Metadata of generated Applications.
    #[serde(default)]
    pub metadata: ApplicationSetTemplateMeta,
    /// Spec of generated Applications.
    #[serde(default)]
    pub spec: ApplicationSpec,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Metadata part of an Application template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetTemplateMeta {
    /// Name (template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace (template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels (templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations (templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Finalizers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalizers: Option<Vec<String>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// One generator. Exactly one of the generator kinds is set; `selector` filters the
/// parameter sets it produces.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetGenerator {
    /// Fixed list of parameter sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<ListGenerator>,
    /// One parameter set per registered cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterGenerator>,
    /// Parameter sets from directories or files in a Git repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitGenerator>,
    /// Cartesian product of two generators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixGenerator>,
    /// Merge of generators by keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeGenerator>,
    /// SCM provider generator (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scm_provider: Option<Value>,
    /// Cluster decision resource generator (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_decision_resource: Option<Value>,
    /// Pull request generator (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Value>,
    /// Plugin generator (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Value>,
    /// Post-selector on generated parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ApplicationSetGenerator {
    /// Names of the generator kinds set on this generator.
    pub fn kinds(&self) -> Vec<&'static str> {
        let present = [
            ("list", self.list.is_some()),
            ("clusters", self.clusters.is_some()),
            ("git", self.git.is_some()),
            ("matrix", self.matrix.is_some()),
            ("merge", self.merge.is_some()),
            ("scmProvider", self.scm_provider.is_some()),
            (
                "clusterDecisionResource",
                self.cluster_decision_resource.is_some(),
            ),
            ("pullRequest", self.pull_request.is_some()),
            ("plugin", self.plugin.is_some()),
        ];
        present
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect()
    }

    fn validate(&self, field: &str, depth: usize) -> Result<(), ApplicationSetValidationError> {
        let found = self.kinds();
        if found.len() != 1 {
            let field = field.to_owned();
            return Err(ApplicationSetValidationError::GeneratorKinds { field, found });
        }
        let children = match (&self.matrix, &self.merge) {
            (Some(matrix), _) => {
                if matrix.generators.len() != 2 {
                    return Err(ApplicationSetValidationError::MatrixChildren {
                        field: field.to_owned(),
                        count: matrix.generators.len(),
                    });
                }
                (&matrix.generators, "matrix")
            }
            (None, Some(merge)) => {
                if merge.generators.len() < 2 || merge.merge_keys.is_empty() {
                    let field = field.to_owned();
                    return Err(ApplicationSetValidationError::MergeShape { field });
                }
                (&merge.generators, "merge")
            }
            (None, None) => return Ok(()),
        };
        if depth + 1 >= MAX_NESTING {
            let field = field.to_owned();
            return Err(ApplicationSetValidationError::NestingDepth { field });
        }
        let (generators, kind) = children;
        for (i, child) in generators.iter().enumerate() {
            child.validate(&format!("{field}.{kind}.generators[{i}]"), depth + 1)?;
        }
        Ok(())
    }
}

/// `list` generator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListGenerator {
    /// Parameter sets (arbitrary JSON objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<Value>>,
    /// Parameter sets as a YAML string (may be templated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elements_yaml: Option<String>,
    /// Template override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `clusters` generator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGenerator {
    /// Label selector over cluster Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Extra parameters (`values.<key>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
    /// Produce one parameter set holding all clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flat_list: Option<bool>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `git` generator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitGenerator {
    /// Repository URL.
    #[serde(rename = "repoURL", default, skip_serializing_if = "String::is_empty")]
    pub repo_url: String,
    /// Revision to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Directory globs (one parameter set per matching directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directories: Option<Vec<GitPathItem>>,
    /// File globs (parameter sets read from JSON/YAML files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<GitPathItem>>,
    /// Poll interval in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<i64>,
    /// Prefix for path parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_param_prefix: Option<String>,
    /// Extra parameters (`values.<key>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
    /// Template override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A path glob in a `git` generator.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitPathItem {
    /// Path glob.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Exclude matches instead of including them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
}

/// `matrix` generator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixGenerator {
    /// The two generators to combine.
    #[serde(default)]
    pub generators: Vec<ApplicationSetGenerator>,
    /// Template override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `merge` generator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeGenerator {
    /// Generators to merge; the first is the base.
    #[serde(default)]
    pub generators: Vec<ApplicationSetGenerator>,
    /// Keys used to match parameter sets.
    #[serde(default)]
    pub merge_keys: Vec<String>,
    /// Template override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ApplicationSetTemplate>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `spec.syncPolicy` of an ApplicationSet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSyncPolicy {
    /// Keep Applications' resources when the ApplicationSet is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_resources_on_deletion: Option<bool>,
    /// `create-only`, `create-update`, `create-delete` or `sync`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applications_sync: Option<String>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `spec.strategy` of an ApplicationSet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStrategy {
    /// `AllAtOnce` or `RollingSync`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Rolling sync steps (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_sync: Option<Value>,
    /// Fields Keelson does not model (e.g. `deletionOrder`).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// `ApplicationSet.status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStatus {
    /// Conditions (`ErrorOccurred`, `ParametersGenerated`, `ResourcesUpToDate`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ApplicationSetCondition>>,
    /// Per-application rollout status (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_status: Option<Vec<Value>>,
    /// Generated Applications (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Value>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// One ApplicationSet condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetCondition {
    /// Condition type.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: String,
    /// RFC 3339 time of the last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
