//! Structural knowledge of object schemas that merging needs: which lists are maps keyed
//! by fields, sets or atomic values, and which objects are maps of free keys rather than
//! structs. Shared by strategic merge patch and server-side apply.
//!
//! Built-in kinds are described by path rules (the subset of Kubernetes' OpenAPI that
//! merging depends on, written by hand because no crate exposes the merge keys as data);
//! custom resources are described by their CRD's `openAPIV3Schema`; anything else is
//! "deduced" the way the API server treats untyped objects (maps granular, lists atomic).

use serde_json::Value;

/// How a list is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars, merged by value.
    Set,
    /// A list of objects keyed by these fields (the first is the strategic-merge key).
    Map(&'static [&'static str]),
}

/// The schema of one kind of object.
#[derive(Debug, Clone, Copy)]
pub enum Schema<'a> {
    /// A built-in kind, by API group ("" for core) and kind.
    Builtin { group: &'a str, kind: &'a str },
    /// A custom resource described by its CRD version's `openAPIV3Schema`.
    Custom(&'a Value),
    /// No schema known: maps are granular, lists atomic.
    Deduced,
}

/// The merge keys of `metadata.ownerReferences`.
const UID: &[&str] = &["uid"];
const NAME: &[&str] = &["name"];

impl Schema<'_> {
    /// The list kind of the list at `path` (field names from the object root; list
    /// items are not part of the path).
    pub fn list_kind(&self, path: &[&str]) -> ListKind {
        if let Some(kind) = metadata_list_kind(path) {
            return kind;
        }
        match self {
            Schema::Builtin { group, kind } => builtin_list_kind(group, kind, path),
            Schema::Custom(schema) => custom_array(schema, path)
                .map(custom_list_kind)
                .unwrap_or(ListKind::Atomic),
            Schema::Deduced => ListKind::Atomic,
        }
    }

    /// Whether the object at `path` is a map of free keys (labels, data, …) rather than
    /// a struct with declared fields. Server-side apply tracks each key of such a map.
    pub fn is_free_map(&self, path: &[&str]) -> bool {
        if let Some(free) = metadata_free_map(path) {
            return free;
        }
        match self {
            Schema::Builtin { group, kind } => builtin_free_map(group, kind, path),
            Schema::Custom(schema) => custom_node(schema, path).is_none_or(|node| {
                node.get("properties").is_none()
                    && (node.get("additionalProperties").is_some()
                        || node.get("x-kubernetes-preserve-unknown-fields")
                            == Some(&Value::Bool(true)))
            }),
            Schema::Deduced => true,
        }
    }

    /// Whether the object at `path` is atomic: replaced as a whole by apply and patches.
    pub fn is_atomic_map(&self, path: &[&str]) -> bool {
        match self {
            Schema::Builtin { group, .. } => builtin_atomic_map(group, path),
            Schema::Deduced => false,
            Schema::Custom(schema) => {
                custom_node(schema, path)
                    .and_then(|n| n.get("x-kubernetes-map-type"))
                    .and_then(Value::as_str)
                    == Some("atomic")
            }
        }
    }
}

fn metadata_list_kind(path: &[&str]) -> Option<ListKind> {
    match path {
        ["metadata", "finalizers"] => Some(ListKind::Set),
        ["metadata", "ownerReferences"] => Some(ListKind::Map(UID)),
        ["metadata", ..] => Some(ListKind::Atomic),
        _ => None,
    }
}

fn metadata_free_map(path: &[&str]) -> Option<bool> {
    match path {
        ["metadata", "labels" | "annotations"] => Some(true),
        ["metadata", ..] => Some(false),
        _ => None,
    }
}

/// Where the pod spec sits inside a built-in kind, if it has one.
fn pod_spec_prefix(group: &str, kind: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("", "Pod") => &["spec"],
        ("", "PodTemplate") => &["template", "spec"],
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &[],
    }
}

fn builtin_list_kind(group: &str, kind: &str, path: &[&str]) -> ListKind {
    let prefix = pod_spec_prefix(group, kind);
    if !prefix.is_empty() && path.starts_with(prefix) {
        return pod_spec_list_kind(&path[prefix.len()..]);
    }
    match (group, kind, path) {
        ("", "Service", ["spec", "ports"]) => ListKind::Map(&["port", "protocol"]),
        ("", "Endpoints", ["subsets"]) => ListKind::Atomic,
        ("", "Node", ["spec", "taints"]) => ListKind::Atomic,
        ("apps", "StatefulSet", ["spec", "volumeClaimTemplates"]) => ListKind::Atomic,
        ("apiextensions.k8s.io", "CustomResourceDefinition", ["spec", "versions"]) => {
            ListKind::Atomic
        }
        _ => ListKind::Atomic,
    }
}

fn pod_spec_list_kind(path: &[&str]) -> ListKind {
    const CONTAINERS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];
    match path {
        [c] if CONTAINERS.contains(c) => ListKind::Map(NAME),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => {
            ListKind::Map(NAME)
        }
        ["hostAliases"] => ListKind::Map(&["ip"]),
        ["topologySpreadConstraints"] => ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
        [c, "ports"] if CONTAINERS.contains(c) => ListKind::Map(&["containerPort", "protocol"]),
        [c, "env"] if CONTAINERS.contains(c) => ListKind::Map(NAME),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => ListKind::Map(&["mountPath"]),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => ListKind::Map(&["devicePath"]),
        _ => ListKind::Atomic,
    }
}

fn builtin_free_map(group: &str, kind: &str, path: &[&str]) -> bool {
    let prefix = pod_spec_prefix(group, kind);
    if !prefix.is_empty() && path.starts_with(prefix) {
        let rest = &path[prefix.len()..];
        return matches!(rest, ["nodeSelector" | "overhead"])
            || matches!(rest, [_, "resources", "limits" | "requests"]);
    }
    // Pod template metadata inside workloads behaves like object metadata.
    if path.len() >= 2 && path[path.len() - 2] == "metadata" {
        return matches!(path[path.len() - 1], "labels" | "annotations");
    }
    matches!(
        (group, kind, path),
        ("", "ConfigMap", ["data" | "binaryData"])
            | ("", "Secret", ["data" | "stringData"])
            | ("", "Service", ["spec", "selector"])
            | ("", "ReplicationController", ["spec", "selector"])
            | (_, _, [.., "matchLabels"])
            | (
                "",
                "ResourceQuota",
                ["spec", "hard"] | ["status", "hard" | "used"]
            )
            | (
                "",
                "PersistentVolumeClaim",
                ["spec", "resources", "requests" | "limits"]
            )
            | ("", "PersistentVolumeClaim", ["status", "capacity"])
            | ("", "Node", ["status", "capacity" | "allocatable"])
    )
}

/// `metav1.LabelSelector` is an atomic struct: apply owns a selector as a whole.
fn builtin_atomic_map(group: &str, path: &[&str]) -> bool {
    match path.last() {
        Some(&"selector") => matches!(group, "apps" | "batch" | "policy"),
        Some(&("podSelector" | "namespaceSelector" | "labelSelector")) => true,
        _ => false,
    }
}

/// Walks a CRD `openAPIV3Schema` down `path`, through `properties`,
/// `additionalProperties` and list `items`.
fn custom_node<'v>(schema: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut node = schema;
    for field in path {
        node = skip_items(node);
        node = node
            .get("properties")
            .and_then(|p| p.get(*field))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
    }
    Some(skip_items(node))
}

/// The array node at `path` itself (where list-type annotations sit).
fn custom_array<'v>(schema: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let (last, parent) = path.split_last()?;
    let parent = custom_node(schema, parent)?;
    parent.get("properties").and_then(|p| p.get(*last))
}

fn skip_items(mut node: &Value) -> &Value {
    while node.get("type").and_then(Value::as_str) == Some("array") {
        match node.get("items") {
            Some(items) => node = items,
            None => break,
        }
    }
    node
}

fn custom_list_kind(node: &Value) -> ListKind {
    // Keys are leaked once per distinct key set so `ListKind` stays `Copy`; the set of
    // CRD list keys in one process is small and bounded by the CRDs it serves.
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListKind::Set,
        Some("map") => {
            let keys: Vec<String> = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ListKind::Map(intern_keys(keys))
        }
        _ => ListKind::Atomic,
    }
}

fn intern_keys(keys: Vec<String>) -> &'static [&'static str] {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static INTERNED: OnceLock<Mutex<HashMap<Vec<String>, &'static [&'static str]>>> =
        OnceLock::new();
    let mut map = INTERNED.get_or_init(Default::default).lock();
    if let Some(found) = map.get(&keys) {
        return found;
    }
    let leaked: Vec<&'static str> = keys
        .iter()
        .map(|k| &*Box::leak(k.clone().into_boxed_str()))
        .collect();
    let leaked: &'static [&'static str] = Box::leak(leaked.into_boxed_slice());
    map.insert(keys, leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_containers_are_keyed_by_name() {
        let s = Schema::Builtin {
            group: "apps",
            kind: "Deployment",
        };
        assert_eq!(
            s.list_kind(&["spec", "template", "spec", "containers"]),
            ListKind::Map(&["name"])
        );
        assert_eq!(
            s.list_kind(&["spec", "template", "spec", "containers", "ports"]),
            ListKind::Map(&["containerPort", "protocol"])
        );
        assert_eq!(
            s.list_kind(&["spec", "template", "spec", "containers", "args"]),
            ListKind::Atomic
        );
        assert!(s.is_free_map(&["spec", "template", "metadata", "labels"]));
        assert!(s.is_free_map(&["spec", "selector", "matchLabels"]));
        assert!(!s.is_free_map(&["spec", "template"]));
    }

    #[test]
    fn custom_schema_is_walked() {
        let schema = serde_json::json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"items": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object"}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
        let s = Schema::Custom(&schema);
        assert!(s.is_free_map(&["spec", "tags"]));
        assert!(!s.is_free_map(&["spec"]));
        assert_eq!(s.list_kind(&["metadata", "finalizers"]), ListKind::Set);
        assert_eq!(s.list_kind(&["spec", "items"]), ListKind::Map(&["id"]));
    }
}
