//! CustomResourceDefinitions for Application, AppProject and ApplicationSet, and the
//! kube `Resource` / `CustomResourceExt` impls of the hand-written top-level types.
//!
//! The schemas are deliberately loose (`spec`, `status`, `operation` are objects with
//! `x-kubernetes-preserve-unknown-fields`): the API server then stores whatever Argo CD
//! users write, and Keelson validates with the typed model instead. Names, scope,
//! short names, printer columns and subresources follow Argo CD's own CRDs (only
//! ApplicationSet has a `status` subresource).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, Resource};

use crate::application::{APPLICATION_KIND, Application, GROUP, VERSION};
use crate::applicationset::{APPLICATION_SET_KIND, ApplicationSet};
use crate::project::{APP_PROJECT_KIND, AppProject};

/// Errors from rendering the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A CRD could not be serialized to YAML.
    #[error("serialize crd {name} to yaml")]
    Serialize {
        /// CRD name.
        name: String,
        /// Underlying error.
        #[source]
        source: serde_yaml_ng::Error,
    },
}

/// Static description of one Argo CD kind.
struct KindInfo {
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    crd_name: &'static str,
    /// Top-level object fields besides apiVersion/kind/metadata.
    fields: &'static [&'static str],
    status_subresource: bool,
}

const APPLICATION_INFO: KindInfo = KindInfo {
    kind: APPLICATION_KIND,
    plural: "applications",
    singular: "application",
    short_names: &["app", "apps"],
    crd_name: "applications.argoproj.io",
    fields: &["spec", "status", "operation"],
    status_subresource: false,
};

const APP_PROJECT_INFO: KindInfo = KindInfo {
    kind: APP_PROJECT_KIND,
    plural: "appprojects",
    singular: "appproject",
    short_names: &["appproj", "appprojs"],
    crd_name: "appprojects.argoproj.io",
    fields: &["spec", "status"],
    status_subresource: false,
};

const APPLICATION_SET_INFO: KindInfo = KindInfo {
    kind: APPLICATION_SET_KIND,
    plural: "applicationsets",
    singular: "applicationset",
    short_names: &["appset", "appsets"],
    crd_name: "applicationsets.argoproj.io",
    fields: &["spec", "status"],
    status_subresource: true,
};

/// The three CRDs, in the order Application, AppProject, ApplicationSet.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        build_crd(&APPLICATION_INFO, application_columns()),
        build_crd(&APP_PROJECT_INFO, Vec::new()),
        build_crd(&APPLICATION_SET_INFO, Vec::new()),
    ]
}

/// The three CRDs as one multi-document YAML string (each document starts with `---`).
/// This is what `keelson crds` prints and what `deploy/crds/argoproj.io_crds.yaml` holds.
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in all() {
        let yaml = serde_yaml_ng::to_string(&crd).map_err(|source| CrdError::Serialize {
            name: crd.metadata.name.clone().unwrap_or_default(),
            source,
        })?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

fn application_columns() -> Vec<CustomResourceColumnDefinition> {
    let column = |name: &str, path: &str, priority: Option<i32>| CustomResourceColumnDefinition {
        name: name.to_owned(),
        json_path: path.to_owned(),
        type_: "string".to_owned(),
        priority,
        ..CustomResourceColumnDefinition::default()
    };
    vec![
        column("Sync Status", ".status.sync.status", None),
        column("Health Status", ".status.health.status", None),
        column("Revision", ".status.sync.revision", Some(10)),
        column("Project", ".spec.project", Some(10)),
    ]
}

fn typed(type_: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        type_: Some(type_.to_owned()),
        ..JSONSchemaProps::default()
    }
}

fn open_object() -> JSONSchemaProps {
    JSONSchemaProps {
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..typed("object")
    }
}

fn build_schema(info: &KindInfo) -> JSONSchemaProps {
    let mut properties = BTreeMap::new();
    properties.insert("apiVersion".to_owned(), typed("string"));
    properties.insert("kind".to_owned(), typed("string"));
    properties.insert("metadata".to_owned(), typed("object"));
    for field in info.fields {
        properties.insert((*field).to_owned(), open_object());
    }
    JSONSchemaProps {
        properties: Some(properties),
        required: Some(vec!["metadata".to_owned(), "spec".to_owned()]),
        ..typed("object")
    }
}

fn build_crd(
    info: &KindInfo,
    columns: Vec<CustomResourceColumnDefinition>,
) -> CustomResourceDefinition {
    let subresources = info.status_subresource.then(|| CustomResourceSubresources {
        status: Some(CustomResourceSubresourceStatus(serde_json::Value::Object(
            serde_json::Map::new(),
        ))),
        scale: None,
    });
    let version = CustomResourceDefinitionVersion {
        name: VERSION.to_owned(),
        served: true,
        storage: true,
        schema: Some(CustomResourceValidation {
            open_api_v3_schema: Some(build_schema(info)),
        }),
        subresources,
        additional_printer_columns: (!columns.is_empty()).then_some(columns),
        ..CustomResourceDefinitionVersion::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert(
        "app.kubernetes.io/name".to_owned(),
        info.crd_name.to_owned(),
    );
    labels.insert("app.kubernetes.io/part-of".to_owned(), "argocd".to_owned());
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(info.crd_name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: info.kind.to_owned(),
                list_kind: Some(format!("{}List", info.kind)),
                plural: info.plural.to_owned(),
                singular: Some(info.singular.to_owned()),
                short_names: Some(info.short_names.iter().map(|s| (*s).to_owned()).collect()),
                categories: None,
            },
            scope: "Namespaced".to_owned(),
            versions: vec![version],
            conversion: None,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}

/// Implements kube's `Resource` and `CustomResourceExt` for a hand-written top-level type.
macro_rules! argo_resource {
    ($ty:ty, $info:expr, $columns:expr) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($info.kind)
            }

            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }

            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(VERSION)
            }

            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($info.plural)
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl kube::CustomResourceExt for $ty {
            fn crd() -> CustomResourceDefinition {
                build_crd(&$info, $columns)
            }

            fn crd_name() -> &'static str {
                $info.crd_name
            }

            fn api_resource() -> ApiResource {
                ApiResource::erase::<$ty>(&())
            }

            fn shortnames() -> &'static [&'static str] {
                $info.short_names
            }
        }
    };
}

argo_resource!(Application, APPLICATION_INFO, application_columns());
argo_resource!(AppProject, APP_PROJECT_INFO, Vec::new());
argo_resource!(ApplicationSet, APPLICATION_SET_INFO, Vec::new());

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn yaml_holds_three_crds_that_parse_back() {
        let yaml = crds_yaml().unwrap();
        let docs: Vec<CustomResourceDefinition> = serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let names: Vec<_> = docs
            .iter()
            .map(|d| d.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "applications.argoproj.io",
                "appprojects.argoproj.io",
                "applicationsets.argoproj.io"
            ]
        );
        assert_eq!(docs, all());
    }

    #[test]
    fn resource_impls_match_argo_cd() {
        assert_eq!(Application::api_version(&()), "argoproj.io/v1alpha1");
        assert_eq!(Application::plural(&()), "applications");
        assert_eq!(
            Application::url_path(&(), Some("argocd")),
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
        );
        assert_eq!(AppProject::crd_name(), "appprojects.argoproj.io");
        assert_eq!(ApplicationSet::shortnames(), ["appset", "appsets"]);
        assert_eq!(ApplicationSet::api_resource().plural, "applicationsets");
        assert!(
            ApplicationSet::crd().spec.versions[0]
                .subresources
                .is_some()
        );
        assert!(Application::crd().spec.versions[0].subresources.is_none());
    }

    #[test]
    fn schema_keeps_unknown_fields_under_spec_status_and_operation() {
        let crd = Application::crd();
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .unwrap()
            .open_api_v3_schema
            .unwrap();
        let props = schema.properties.unwrap();
        for field in ["spec", "status", "operation"] {
            assert_eq!(
                props[field].x_kubernetes_preserve_unknown_fields,
                Some(true),
                "{field}"
            );
        }
    }
}
