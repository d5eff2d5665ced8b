//! Which lists are merged by key (list-maps), which are sets and which are atomic, and
//! how list-map items are matched — the table server-side apply uses for built-in kinds,
//! plus a fallback that treats lists of objects that all have `name` as keyed by `name`.

use serde_json::{Map, Value};

/// How a list is merged and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Items are identified by these key fields.
    Map(&'static [&'static str]),
    /// Items are scalars identified by value.
    Set,
    /// The list is one value.
    Atomic,
}

const NAME: &[&str] = &["name"];
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The list type of the list at `path` (object keys from the root; list items appear as
/// `"[]"`) inside an object of `kind`.
pub(crate) fn list_type(kind: &str, path: &[&str], desired: &[Value], live: &[Value]) -> ListType {
    let Some((&field, parent)) = path.split_last() else {
        return ListType::Atomic;
    };
    let in_container = parent.len() >= 2
        && parent[parent.len() - 1] == "[]"
        && CONTAINER_LISTS.contains(&parent[parent.len() - 2]);
    let known = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "webhooks" => Some(ListType::Map(NAME)),
        "volumeMounts" => Some(ListType::Map(&["mountPath"])),
        "volumeDevices" => Some(ListType::Map(&["devicePath"])),
        "ports" if in_container => Some(ListType::Map(&["containerPort", "protocol"])),
        "ports" if kind == "Service" && parent == ["spec"] => {
            Some(ListType::Map(&["port", "protocol"]))
        }
        "hostAliases" => Some(ListType::Map(&["ip"])),
        "topologySpreadConstraints" => Some(ListType::Map(&["topologyKey", "whenUnsatisfiable"])),
        "ownerReferences" if parent == ["metadata"] => Some(ListType::Map(&["uid"])),
        "finalizers" if parent == ["metadata"] => Some(ListType::Set),
        "conditions" => Some(ListType::Map(&["type"])),
        _ => None,
    };
    known.unwrap_or_else(|| fallback(desired, live))
}

fn fallback(desired: &[Value], live: &[Value]) -> ListType {
    let named = |v: &Value| v.get("name").is_some_and(Value::is_string);
    if !desired.is_empty() && desired.iter().chain(live).all(named) {
        ListType::Map(NAME)
    } else {
        ListType::Atomic
    }
}

/// The value a key field takes when an item leaves it out (`protocol` defaults to TCP).
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::String("TCP".to_string()))
}

fn field_value(item: &Value, field: &str) -> Option<Value> {
    item.get(field)
        .filter(|v| !v.is_null())
        .cloned()
        .or_else(|| key_default(field))
}

/// Whether two items have the same key.
pub(crate) fn same_key(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| field_value(a, k) == field_value(b, k))
}

/// Index of the item in `items` whose key equals `item`'s.
pub(crate) fn find_same(items: &[Value], item: &Value, keys: &[&str]) -> Option<usize> {
    items
        .iter()
        .position(|candidate| same_key(candidate, item, keys))
}

/// Index of the item matching a managedFields `k:{...}` key.
pub(crate) fn find_by_key(items: &[Value], key: &Map<String, Value>) -> Option<usize> {
    items.iter().position(|item| {
        key.iter().all(|(field, want)| {
            field_value(item, field).as_ref() == Some(want)
                || numeric_eq(field_value(item, field).as_ref(), want)
        })
    })
}

fn numeric_eq(have: Option<&Value>, want: &Value) -> bool {
    match (have.and_then(Value::as_f64), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_lists() {
        let pod = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_type("Deployment", &pod, &[], &[]),
            ListType::Map(&["name"])
        );
        let ports = ["spec", "template", "spec", "containers", "[]", "ports"];
        assert_eq!(
            list_type("Deployment", &ports, &[], &[]),
            ListType::Map(&["containerPort", "protocol"])
        );
        assert_eq!(
            list_type("Service", &["spec", "ports"], &[], &[]),
            ListType::Map(&["port", "protocol"])
        );
        let mounts = ["spec", "containers", "[]", "volumeMounts"];
        assert_eq!(
            list_type("Pod", &mounts, &[], &[]),
            ListType::Map(&["mountPath"])
        );
        assert_eq!(
            list_type("Pod", &["metadata", "finalizers"], &[], &[]),
            ListType::Set
        );
        let args = ["spec", "containers", "[]", "args"];
        assert_eq!(
            list_type("Pod", &args, &[json!("a")], &[json!("a")]),
            ListType::Atomic
        );
    }

    #[test]
    fn fallback_matches_named_objects() {
        let d = [json!({"name": "a", "x": 1})];
        let l = [json!({"name": "b"}), json!({"name": "a"})];
        assert_eq!(
            list_type("Foo", &["spec", "items"], &d, &l),
            ListType::Map(&["name"])
        );
        let unnamed = [json!({"key": "a"})];
        assert_eq!(
            list_type("Foo", &["spec", "items"], &unnamed, &l),
            ListType::Atomic
        );
    }

    #[test]
    fn protocol_defaults_to_tcp_when_matching() {
        let keys = &["containerPort", "protocol"];
        let live = [
            json!({"containerPort": 53, "protocol": "UDP"}),
            json!({"containerPort": 80, "protocol": "TCP"}),
        ];
        assert_eq!(
            find_same(&live, &json!({"containerPort": 80}), keys),
            Some(1)
        );
        assert_eq!(find_same(&live, &json!({"containerPort": 53}), keys), None);
        let key = json!({"containerPort": 80, "protocol": "TCP"});
        assert_eq!(find_by_key(&live, key.as_object().unwrap()), Some(1));
    }
}
