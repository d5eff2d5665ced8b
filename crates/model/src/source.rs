//! `ApplicationSource` and its tool-specific parts (directory/jsonnet, Helm, Kustomize,
//! config-management plugin), as in Argo CD's `v1alpha1.ApplicationSource`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extra::Extra;

/// Where an application's manifests come from (`spec.source` / `spec.sources[]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    /// Git repository URL, Helm repository URL, or OCI registry reference.
    #[serde(rename = "repoURL", default, skip_serializing_if = "String::is_empty")]
    pub repo_url: String,
    /// Directory inside a Git repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Git revision (branch, tag, commit) or Helm chart version; `HEAD` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// Helm chart name when `repo_url` is a Helm repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Name under which a multi-source app refers to this source (`$ref/path`).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// Display name of the source (multi-source apps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plain-directory (and Jsonnet) options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    /// Helm options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Kustomize options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSource>,
    /// Config management plugin options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginSource>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// The tool-specific sections set explicitly on a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplicitSourceType {
    /// `directory` is set.
    Directory,
    /// `helm` is set.
    Helm,
    /// `kustomize` is set.
    Kustomize,
    /// `plugin` is set.
    Plugin,
}

impl ApplicationSource {
    /// The revision to resolve, defaulting to `HEAD` like Argo CD.
    pub fn target_revision_or_head(&self) -> &str {
        match self.target_revision.as_deref() {
            Some(rev) if !rev.is_empty() => rev,
            _ => "HEAD",
        }
    }

    /// Whether this source is a Helm chart from a chart repository (`chart` is set).
    pub fn is_helm_chart(&self) -> bool {
        self.chart.as_deref().is_some_and(|c| !c.is_empty())
    }

    /// Whether this is a multi-source `ref` entry that only provides files (no path/chart).
    pub fn is_ref_only(&self) -> bool {
        self.ref_.as_deref().is_some_and(|r| !r.is_empty())
            && self.path.as_deref().is_none_or(str::is_empty)
            && !self.is_helm_chart()
    }

    /// The tool sections explicitly present, in a fixed order. Argo CD rejects a source
    /// with more than one.
    pub fn explicit_types(&self) -> Vec<ExplicitSourceType> {
        let mut types = Vec::new();
        if self.directory.is_some() {
            types.push(ExplicitSourceType::Directory);
        }
        if self.helm.is_some() {
            types.push(ExplicitSourceType::Helm);
        }
        if self.kustomize.is_some() {
            types.push(ExplicitSourceType::Kustomize);
        }
        if self.plugin.is_some() {
            types.push(ExplicitSourceType::Plugin);
        }
        types
    }
}

/// Options for a plain directory of manifests (`source.directory`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// Descend into sub-directories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurse: Option<bool>,
    /// Jsonnet options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<JsonnetSource>,
    /// Glob of files to exclude (`{a.yaml,b.yaml}` for several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Glob of files to include (`{a.yaml,b.yaml}` for several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Jsonnet options (`source.directory.jsonnet`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonnetSource {
    /// External variables (`--ext-str` / `--ext-code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_vars: Option<Vec<JsonnetVar>>,
    /// Top-level arguments (`--tla-str` / `--tla-code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlas: Option<Vec<JsonnetVar>>,
    /// Library search paths (`-J`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libs: Option<Vec<String>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A Jsonnet external variable or top-level argument.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonnetVar {
    /// Variable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Value (a string, or Jsonnet code when `code` is true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Whether `value` is Jsonnet code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<bool>,
}

/// Helm options (`source.helm`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// Release name; the application name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Inline values as a YAML string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    /// Inline values as an object (takes precedence over `values`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_object: Option<Value>,
    /// Value files, relative to the chart or `$ref/...` paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_files: Option<Vec<String>>,
    /// `--set` style parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<HelmParameter>>,
    /// `--set-file` style parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_parameters: Option<Vec<HelmFileParameter>>,
    /// Do not render the chart's `crds/` directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_crds: Option<bool>,
    /// Pass repository credentials to all domains (`--pass-credentials`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_credentials: Option<bool>,
    /// Do not fail when a value file is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_missing_value_files: Option<bool>,
    /// Helm version (`v3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Namespace to render the chart for (defaults to the destination namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Fields Keelson does not model (kubeVersion, apiVersions, skipTests, ...).
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A Helm `--set` parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    /// Dotted value path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Use `--set-string` instead of `--set`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_string: Option<bool>,
}

/// A Helm `--set-file` parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmFileParameter {
    /// Dotted value path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// File path in the repository.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// Kustomize options (`source.kustomize`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSource {
    /// Prefix added to resource names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Suffix added to resource names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_suffix: Option<String>,
    /// Image overrides (`name=newName:tag`, `name:tag`, `name@digest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Labels added to every resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_labels: Option<BTreeMap<String, String>>,
    /// Annotations added to every resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_annotations: Option<BTreeMap<String, String>>,
    /// Overwrite existing values of `common_labels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_common_labels: Option<bool>,
    /// Overwrite existing values of `common_annotations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_common_annotations: Option<bool>,
    /// Namespace set on every namespaced resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kustomize version to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Replica overrides (`[{name, count}]`), kept as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<Value>>,
    /// Patches (`[{target, patch, path, options}]`), kept as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Value>>,
    /// Kustomize components to include.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Config management plugin options (`source.plugin`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSource {
    /// Plugin name (discovered by the repo-server when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Environment variables passed to the plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvEntry>>,
    /// Structured plugin parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<PluginParameter>>,
    /// Fields Keelson does not model.
    #[serde(flatten, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A `name`/`value` pair (plugin env, application info).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EnvEntry {
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A plugin parameter: exactly one of `string`, `array`, `map` is normally set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginParameter {
    /// Parameter name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// String value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// Array value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<Vec<String>>,
    /// Map value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<BTreeMap<String, String>>,
}
