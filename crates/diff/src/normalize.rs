//! Normalisation of one object before comparison: server-populated metadata and status
//! dropped, Secret `stringData` folded into `data`, quantities canonicalised, numbers
//! unified, and empty or null fields removed (empty and absent are equal).

use base64::Engine;
use serde_json::{Map, Value};

use crate::quantity;

/// The annotation `kubectl apply` uses to remember the last applied configuration.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

const SERVER_METADATA: [&str; 7] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionGracePeriodSeconds",
];

/// Normalises one object for comparison. See the crate docs for the exact rules.
pub fn normalize(obj: &Value) -> Value {
    let mut out = crate::port_protocols::with_port_protocols(obj).into_owned();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Value::Object(map) = &mut out {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            normalize_metadata(meta);
        }
        if kind == "Secret" {
            fold_string_data(map);
        }
        canonicalize_kind_quantities(&kind, map);
    }
    canonicalize_resource_quantities(&mut out);
    prune(&mut out);
    out
}

fn normalize_metadata(meta: &mut Map<String, Value>) {
    for key in SERVER_METADATA {
        meta.remove(key);
    }
    if meta.get("namespace").and_then(Value::as_str) == Some("") {
        meta.remove("namespace");
    }
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Folds `stringData` into base64 `data` the way the API server does (`stringData` wins).
pub(crate) fn fold_string_data(secret: &mut Map<String, Value>) {
    let Some(Value::Object(string_data)) = secret.remove("stringData") else {
        return;
    };
    let data = secret
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(data) = data {
        for (key, value) in string_data {
            let text = match value {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            data.insert(key, Value::String(encoded));
        }
    }
}

/// Quantity maps at kind-specific places (PersistentVolume capacity, ResourceQuota hard,
/// LimitRange limits).
fn canonicalize_kind_quantities(kind: &str, map: &mut Map<String, Value>) {
    let Some(Value::Object(spec)) = map.get_mut("spec") else {
        return;
    };
    match kind {
        "PersistentVolume" => canonicalize_map(spec.get_mut("capacity")),
        "ResourceQuota" => canonicalize_map(spec.get_mut("hard")),
        "LimitRange" => {
            if let Some(Value::Array(limits)) = spec.get_mut("limits") {
                for limit in limits.iter_mut().filter_map(Value::as_object_mut) {
                    for key in [
                        "max",
                        "min",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        canonicalize_map(limit.get_mut(key));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Quantities anywhere a pod spec or claim keeps them: `resources.{requests,limits}`,
/// `overhead` and `sizeLimit`.
fn canonicalize_resource_quantities(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match key.as_str() {
                    "resources" if child.is_object() => {
                        canonicalize_map(child.get_mut("requests"));
                        canonicalize_map(child.get_mut("limits"));
                    }
                    "overhead" => canonicalize_map(Some(child)),
                    "sizeLimit" => {
                        if let Some(c) = quantity::canonicalize(child) {
                            *child = c;
                        }
                    }
                    _ => {}
                }
                canonicalize_resource_quantities(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize_resource_quantities),
        _ => {}
    }
}

fn canonicalize_map(value: Option<&mut Value>) {
    if let Some(Value::Object(map)) = value {
        for v in map.values_mut() {
            if let Some(c) = quantity::canonicalize(v) {
                *v = c;
            }
        }
    }
}

/// Removes nulls, empty maps and empty lists from maps (recursively) and turns whole
/// floats into integers. List items are kept (their position is meaningful); empty
/// objects inside lists stay.
pub(crate) fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune(child);
            }
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        Value::Number(n) => {
            let whole = n
                .as_f64()
                .filter(|f| !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15);
            if let Some(f) = whole {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_server_metadata_status_and_last_applied() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "a", "namespace": "", "uid": "u", "resourceVersion": "7",
                "generation": 3, "creationTimestamp": "2020-01-01T00:00:00Z",
                "selfLink": "/x", "managedFields": [{"manager": "m"}],
                "annotations": {LAST_APPLIED_ANNOTATION: "{}"}, "labels": {}
            },
            "status": {"x": 1},
            "data": {"k": "v"}
        });
        assert_eq!(
            normalize(&live),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn secret_string_data_becomes_base64_data() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "old"}, "stringData": {"b": "hello", "c": "1"}});
        let out = normalize(&desired);
        assert_eq!(
            out["data"],
            json!({"a": "eA==", "b": "aGVsbG8=", "c": "MQ=="})
        );
        assert!(out.get("stringData").is_none());
    }

    #[test]
    fn empty_and_absent_are_equal() {
        let a = json!({"kind": "X", "spec": {"a": {}, "b": [], "c": null, "d": {"e": {}}}, "metadata": {"labels": {}}});
        let b = json!({"kind": "X"});
        assert_eq!(normalize(&a), normalize(&b));
        let with_item = json!({"kind": "X", "spec": {"list": [{}]}});
        assert_eq!(normalize(&with_item)["spec"]["list"], json!([{}]));
    }

    #[test]
    fn quantities_in_pod_templates_are_canonical() {
        let a = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 1}}}
        ], "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]}}}});
        let b = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1000m"}}}
        ], "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1024Mi"}}]}}}});
        assert_eq!(normalize(&a), normalize(&b));
    }

    #[test]
    fn kind_specific_quantities() {
        let a = json!({"kind": "ResourceQuota", "spec": {"hard": {"cpu": "2", "pods": 10}}});
        let b = json!({"kind": "ResourceQuota", "spec": {"hard": {"cpu": "2000m", "pods": "10"}}});
        assert_eq!(normalize(&a), normalize(&b));
        let c =
            json!({"kind": "ConfigMap", "data": {"hard": "2"}, "spec": {"hard": {"cpu": "2000m"}}});
        assert_eq!(normalize(&c)["spec"]["hard"]["cpu"], json!("2000m"));
    }

    #[test]
    fn int_or_string_ports_are_kept_apart_and_floats_unified() {
        let a = json!({"kind": "Service", "spec": {"ports": [{"port": 80.0, "targetPort": "80"}]}});
        let out = normalize(&a);
        assert_eq!(out["spec"]["ports"][0]["port"], json!(80));
        assert_eq!(out["spec"]["ports"][0]["targetPort"], json!("80"));
    }
}
