//! The resource types a simulated cluster serves: the built-in kinds plus kinds defined
//! at runtime by CustomResourceDefinitions, with what discovery needs to list them.

use serde_json::Value;
use std::sync::Arc;

/// One served resource type (one group/version/plural).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, "" for core.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Whether `/status` is a subresource (then status is ignored on the main resource).
    pub has_status: bool,
    /// Whether objects carry `metadata.generation` bumped on spec changes.
    pub has_generation: bool,
    /// For custom resources, the version's `openAPIV3Schema`.
    pub schema: Option<Arc<Value>>,
}

impl ResourceType {
    /// `apiVersion` string of this type.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural` for core), as used in error messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether this is a custom resource served from a CRD.
    pub fn is_custom(&self) -> bool {
        self.schema.is_some()
    }

    /// The merge schema of this type.
    pub fn merge_schema(&self) -> crate::schema::Schema<'_> {
        match &self.schema {
            Some(s) if s.get("properties").is_some() => crate::schema::Schema::Custom(s),
            Some(_) => crate::schema::Schema::Deduced,
            None => crate::schema::Schema::Builtin {
                group: &self.group,
                kind: &self.kind,
            },
        }
    }

    /// The verbs this type supports, for discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// A built-in type: group, version, kind, plural, namespaced, short names, has a status
/// subresource, has a generation.
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
);

const fn b(
    gvk: (&'static str, &'static str, &'static str),
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    flags: (bool, bool),
) -> Builtin {
    (
        gvk.0, gvk.1, gvk.2, plural, namespaced, short, flags.0, flags.1,
    )
}

const BUILTINS: &[Builtin] = &[
    b(
        ("", "v1", "Namespace"),
        "namespaces",
        false,
        &["ns"],
        (true, false),
    ),
    b(
        ("", "v1", "ConfigMap"),
        "configmaps",
        true,
        &["cm"],
        (false, false),
    ),
    b(("", "v1", "Secret"), "secrets", true, &[], (false, false)),
    b(
        ("", "v1", "Service"),
        "services",
        true,
        &["svc"],
        (true, false),
    ),
    b(
        ("", "v1", "ServiceAccount"),
        "serviceaccounts",
        true,
        &["sa"],
        (false, false),
    ),
    b(("", "v1", "Pod"), "pods", true, &["po"], (true, false)),
    b(
        ("", "v1", "PodTemplate"),
        "podtemplates",
        true,
        &[],
        (false, false),
    ),
    b(
        ("", "v1", "ReplicationController"),
        "replicationcontrollers",
        true,
        &["rc"],
        (true, true),
    ),
    b(
        ("", "v1", "PersistentVolumeClaim"),
        "persistentvolumeclaims",
        true,
        &["pvc"],
        (true, false),
    ),
    b(
        ("", "v1", "PersistentVolume"),
        "persistentvolumes",
        false,
        &["pv"],
        (true, false),
    ),
    b(
        ("", "v1", "Endpoints"),
        "endpoints",
        true,
        &["ep"],
        (false, false),
    ),
    b(("", "v1", "Event"), "events", true, &["ev"], (false, false)),
    b(
        ("", "v1", "LimitRange"),
        "limitranges",
        true,
        &["limits"],
        (false, false),
    ),
    b(
        ("", "v1", "ResourceQuota"),
        "resourcequotas",
        true,
        &["quota"],
        (true, false),
    ),
    b(("", "v1", "Node"), "nodes", false, &["no"], (true, false)),
    b(
        ("apps", "v1", "Deployment"),
        "deployments",
        true,
        &["deploy"],
        (true, true),
    ),
    b(
        ("apps", "v1", "ReplicaSet"),
        "replicasets",
        true,
        &["rs"],
        (true, true),
    ),
    b(
        ("apps", "v1", "StatefulSet"),
        "statefulsets",
        true,
        &["sts"],
        (true, true),
    ),
    b(
        ("apps", "v1", "DaemonSet"),
        "daemonsets",
        true,
        &["ds"],
        (true, true),
    ),
    b(
        ("apps", "v1", "ControllerRevision"),
        "controllerrevisions",
        true,
        &[],
        (false, false),
    ),
    b(("batch", "v1", "Job"), "jobs", true, &[], (true, true)),
    b(
        ("batch", "v1", "CronJob"),
        "cronjobs",
        true,
        &["cj"],
        (true, true),
    ),
    b(
        ("networking.k8s.io", "v1", "Ingress"),
        "ingresses",
        true,
        &["ing"],
        (true, true),
    ),
    b(
        ("networking.k8s.io", "v1", "IngressClass"),
        "ingressclasses",
        false,
        &[],
        (false, true),
    ),
    b(
        ("networking.k8s.io", "v1", "NetworkPolicy"),
        "networkpolicies",
        true,
        &["netpol"],
        (false, true),
    ),
    b(
        ("rbac.authorization.k8s.io", "v1", "Role"),
        "roles",
        true,
        &[],
        (false, false),
    ),
    b(
        ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
        "rolebindings",
        true,
        &[],
        (false, false),
    ),
    b(
        ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        "clusterroles",
        false,
        &[],
        (false, false),
    ),
    b(
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
        "clusterrolebindings",
        false,
        &[],
        (false, false),
    ),
    b(
        ("coordination.k8s.io", "v1", "Lease"),
        "leases",
        true,
        &[],
        (false, false),
    ),
    b(
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        (true, true),
    ),
    b(
        ("policy", "v1", "PodDisruptionBudget"),
        "poddisruptionbudgets",
        true,
        &["pdb"],
        (true, true),
    ),
    b(
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        (true, false),
    ),
    b(
        ("autoscaling", "v1", "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        (true, false),
    ),
    b(
        ("storage.k8s.io", "v1", "StorageClass"),
        "storageclasses",
        false,
        &["sc"],
        (false, false),
    ),
    b(
        ("discovery.k8s.io", "v1", "EndpointSlice"),
        "endpointslices",
        true,
        &[],
        (false, false),
    ),
    b(
        ("events.k8s.io", "v1", "Event"),
        "events",
        true,
        &["ev"],
        (false, false),
    ),
    b(
        ("apiregistration.k8s.io", "v1", "APIService"),
        "apiservices",
        false,
        &[],
        (true, false),
    ),
];

/// The built-in resource types every simulated cluster serves.
pub fn builtin_types() -> Vec<Arc<ResourceType>> {
    BUILTINS
        .iter()
        .map(
            |&(group, version, kind, plural, namespaced, short, status, generation)| {
                Arc::new(ResourceType {
                    group: group.into(),
                    version: version.into(),
                    kind: kind.into(),
                    plural: plural.into(),
                    singular: kind.to_ascii_lowercase(),
                    namespaced,
                    short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                    has_status: status,
                    has_generation: generation,
                    schema: None,
                })
            },
        )
        .collect()
}

/// The resource types a CustomResourceDefinition defines (one per served version).
pub fn crd_types(crd: &Value) -> Vec<Arc<ResourceType>> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(kind), Some(plural)) = (names["kind"].as_str(), names["plural"].as_str()) else {
        return Vec::new();
    };
    let singular = names["singular"]
        .as_str()
        .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let schema = v["schema"]["openAPIV3Schema"].clone();
            Some(Arc::new(ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                has_status: v["subresources"]["status"].is_object(),
                has_generation: true,
                schema: Some(Arc::new(if schema.is_null() {
                    Value::Object(Default::default())
                } else {
                    schema
                })),
            }))
        })
        .collect()
}
