//! Keys of desired and live objects: namespace defaulting by resource scope (known from
//! discovery, else a built-in list of cluster-scoped kinds, else namespaced), the
//! de-duplication of desired objects (last wins, `RepeatedResourceWarning`) and the live
//! lookup.

use std::collections::HashMap;

use keelson_model::ResourceKey;
use keelson_model::application_status::{
    ApplicationCondition, CONDITION_COMPARISON_ERROR, CONDITION_INVALID_SPEC_ERROR,
    CONDITION_REPEATED_RESOURCE_WARNING,
};
use keelson_model::resource_key::group_of;
use serde_json::Value;

/// Well-known cluster-scoped kinds, by (group, kind), used when discovery does not know
/// the kind.
const CLUSTER_SCOPED: [(&str, &str); 24] = [
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("argoproj.io", "ClusterWorkflowTemplate"),
];

/// Scope of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Namespaced (known).
    Namespaced,
    /// Cluster-scoped (known, or in the built-in list).
    Cluster,
    /// Unknown: treated as namespaced, but the live lookup also tries cluster scope.
    Unknown,
}

/// The scope of `(group, kind)`: discovery first, then the built-in list.
pub(crate) fn scope_of(
    group: &str,
    kind: &str,
    scope: &dyn Fn(&str, &str) -> Option<bool>,
) -> Scope {
    match scope(group, kind) {
        Some(true) => Scope::Namespaced,
        Some(false) => Scope::Cluster,
        None if CLUSTER_SCOPED.contains(&(group, kind)) => Scope::Cluster,
        None => Scope::Unknown,
    }
}

/// A desired object after namespace defaulting and de-duplication.
#[derive(Debug)]
pub(crate) struct Target {
    pub key: ResourceKey,
    pub obj: Value,
    pub scope: Scope,
}

/// The desired objects, keyed and de-duplicated, plus the conditions found on the way.
pub(crate) struct Targets {
    pub targets: Vec<Target>,
    pub conditions: Vec<ApplicationCondition>,
    /// Some object could not be keyed (no kind, or neither name nor generateName).
    pub failed: bool,
}

fn condition(type_: &str, message: String) -> ApplicationCondition {
    ApplicationCondition {
        type_: type_.to_owned(),
        message,
        last_transition_time: None,
    }
}

fn text<'a>(obj: &'a Value, outer: &str, inner: &str) -> &'a str {
    obj.get(outer)
        .and_then(|o| o.get(inner))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Sets or removes `metadata.namespace`.
fn set_namespace(obj: &mut Value, namespace: Option<&str>) {
    let Some(Value::Object(meta)) = obj.get_mut("metadata") else {
        return;
    };
    match namespace {
        Some(ns) => {
            meta.insert("namespace".to_owned(), Value::String(ns.to_owned()));
        }
        None => {
            meta.remove("namespace");
        }
    }
}

/// Keys the desired objects: namespaced kinds without a namespace get
/// `destination_namespace`, cluster-scoped kinds lose theirs; a key seen twice keeps the
/// last object (in the position of the first) and raises `RepeatedResourceWarning`.
/// Hooks with only `generateName` keep an empty name and are never de-duplicated.
pub(crate) fn prepare_targets(
    desired: Vec<Value>,
    destination_namespace: &str,
    scope: &dyn Fn(&str, &str) -> Option<bool>,
) -> Targets {
    let mut targets: Vec<Target> = Vec::with_capacity(desired.len());
    let mut seen: HashMap<ResourceKey, (usize, usize)> = HashMap::with_capacity(desired.len());
    let mut order: Vec<ResourceKey> = Vec::new();
    let mut conditions = Vec::new();
    let mut failed = false;
    for (position, mut obj) in desired.into_iter().enumerate() {
        let group = group_of(api_version(&obj)).to_owned();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = text(&obj, "metadata", "name").to_owned();
        let generate_name = text(&obj, "metadata", "generateName");
        if kind.is_empty() || (name.is_empty() && generate_name.is_empty()) {
            failed = true;
            conditions.push(condition(
                CONDITION_COMPARISON_ERROR,
                format!("desired object {position} has no kind or no metadata.name"),
            ));
            continue;
        }
        let dedup_name = (name.is_empty()).then(|| format!("{generate_name}{position}"));
        let scope = scope_of(&group, &kind, scope);
        let namespace = match scope {
            Scope::Cluster => {
                set_namespace(&mut obj, None);
                String::new()
            }
            Scope::Namespaced | Scope::Unknown => {
                let ns = text(&obj, "metadata", "namespace");
                if ns.is_empty() && !destination_namespace.is_empty() {
                    set_namespace(&mut obj, Some(destination_namespace));
                    destination_namespace.to_owned()
                } else {
                    ns.to_owned()
                }
            }
        };
        if scope == Scope::Namespaced && namespace.is_empty() {
            conditions.push(condition(
                CONDITION_INVALID_SPEC_ERROR,
                format!(
                    "Namespace for {name} {group}/{}, Kind={kind} is missing.",
                    version_of(api_version(&obj))
                ),
            ));
        }
        let key = ResourceKey::new(group, kind, namespace, name);
        let dedup_key = match dedup_name {
            Some(name) => ResourceKey {
                name,
                ..key.clone()
            },
            None => key.clone(),
        };
        match seen.get_mut(&dedup_key) {
            Some((index, count)) => {
                *count += 1;
                targets[*index] = Target { key, obj, scope };
            }
            None => {
                seen.insert(dedup_key.clone(), (targets.len(), 1));
                order.push(dedup_key);
                targets.push(Target { key, obj, scope });
            }
        }
    }
    for key in order {
        if let Some((_, count)) = seen.get(&key).filter(|(_, c)| *c > 1) {
            conditions.push(condition(
                CONDITION_REPEATED_RESOURCE_WARNING,
                format!("Resource {key} appeared {count} times among application resources."),
            ));
        }
    }
    Targets {
        targets,
        conditions,
        failed,
    }
}

fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
}

/// The version part of an `apiVersion` (`apps/v1` → `v1`).
pub(crate) fn version_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or(api_version, |(_, v)| v)
}

/// Live objects by key, each taken at most once.
pub(crate) struct LiveIndex {
    objects: Vec<Option<(ResourceKey, Value)>>,
    by_key: HashMap<ResourceKey, usize>,
}

impl LiveIndex {
    /// Indexes the live objects; objects without kind or name are dropped.
    pub(crate) fn new(live: Vec<Value>) -> Self {
        let mut objects = Vec::with_capacity(live.len());
        let mut by_key = HashMap::with_capacity(live.len());
        for obj in live {
            let Ok(key) = ResourceKey::from_object(&obj) else {
                continue;
            };
            by_key.insert(key.clone(), objects.len());
            objects.push(Some((key, obj)));
        }
        LiveIndex { objects, by_key }
    }

    /// Takes the live twin of a target: by its key, and for an unknown scope also by the
    /// cluster-scoped key (Argo CD checks both rather than miss the object).
    pub(crate) fn take(&mut self, target: &Target) -> Option<Value> {
        if target.key.name.is_empty() {
            return None;
        }
        if let Some(obj) = self.take_key(&target.key) {
            return Some(obj);
        }
        if target.scope == Scope::Unknown && !target.key.namespace.is_empty() {
            let cluster_key = target.key.clone().with_namespace("");
            return self.take_key(&cluster_key);
        }
        None
    }

    fn take_key(&mut self, key: &ResourceKey) -> Option<Value> {
        let index = self.by_key.remove(key)?;
        self.objects.get_mut(index)?.take().map(|(_, obj)| obj)
    }

    /// The live objects not taken, in input order.
    pub(crate) fn into_rest(self) -> impl Iterator<Item = (ResourceKey, Value)> {
        self.objects.into_iter().flatten()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Value> {
        text.split("\n---\n")
            .map(|d| serde_yaml_ng::from_str(d).unwrap())
            .collect()
    }

    fn no_discovery(_: &str, _: &str) -> Option<bool> {
        None
    }

    #[test]
    fn namespaces_are_defaulted_by_scope() {
        let desired = docs(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod, namespace: stray}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: example.com/v1
kind: ClusterWidget
metadata: {name: cw, namespace: stray}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: other}
"#,
        );
        let scope = |group: &str, kind: &str| match (group, kind) {
            ("example.com", "ClusterWidget") => Some(false),
            ("", "ConfigMap") => Some(true),
            _ => None,
        };
        let t = prepare_targets(desired, "dest", &scope);
        let keys: Vec<String> = t.targets.iter().map(|t| t.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "/ConfigMap/dest/cm",
                "/Namespace//prod",
                "example.com/Widget/dest/w",
                "example.com/ClusterWidget//cw",
                "apps/Deployment/other/d"
            ]
        );
        assert_eq!(t.targets[0].obj["metadata"]["namespace"], "dest");
        assert!(t.targets[1].obj["metadata"].get("namespace").is_none());
        assert!(t.targets[3].obj["metadata"].get("namespace").is_none());
        assert_eq!(t.targets[2].scope, Scope::Unknown);
        assert!(t.conditions.is_empty() && !t.failed);
    }

    #[test]
    fn repeated_keys_warn_and_the_last_wins() {
        let desired = docs(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {v: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: dest}
data: {v: "2"}
---
apiVersion: batch/v1
kind: Job
metadata: {generateName: hook-}
---
apiVersion: batch/v1
kind: Job
metadata: {generateName: hook-}
"#,
        );
        let t = prepare_targets(desired, "dest", &no_discovery);
        assert_eq!(t.targets.len(), 4);
        assert_eq!(t.targets[0].obj["data"]["v"], "2");
        assert_eq!(t.targets[2].key.name, "");
        assert_eq!(t.conditions.len(), 1);
        assert_eq!(t.conditions[0].type_, "RepeatedResourceWarning");
        assert_eq!(
            t.conditions[0].message,
            "Resource /ConfigMap/dest/cm appeared 2 times among application resources."
        );
    }

    #[test]
    fn unkeyable_objects_and_missing_namespaces_are_reported() {
        let desired = docs(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}",
        );
        let namespaced = |_: &str, _: &str| Some(true);
        let t = prepare_targets(desired, "", &namespaced);
        assert!(t.failed);
        let messages: Vec<&str> = t.conditions.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "desired object 0 has no kind or no metadata.name",
                "Namespace for d apps/v1, Kind=Deployment is missing."
            ]
        );
    }

    #[test]
    fn live_lookup_tries_cluster_scope_for_unknown_kinds() {
        let live = docs("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}");
        let mut index = LiveIndex::new(live);
        let t = prepare_targets(
            docs("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}"),
            "dest",
            &no_discovery,
        );
        assert!(index.take(&t.targets[0]).is_some());
        assert!(index.take(&t.targets[0]).is_none());
        assert_eq!(index.into_rest().count(), 0);
    }
}
