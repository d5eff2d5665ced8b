//! `metadata.managedFields[].fieldsV1` parsing (`f:`, `k:{..}`, `v:`, `i:` and `.`) and
//! removal of the fields a set names from an object.

use serde_json::{Map, Value};

use crate::error::DiffError;
use crate::list_maps::find_by_key;

/// One step of a managed-fields path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathElement {
    /// `f:<name>`: an object field.
    Field(String),
    /// `k:{...}`: a list-map item by key.
    Key(Map<String, Value>),
    /// `v:<json>`: a set item by value.
    Value(Value),
    /// `i:<n>`: a list item by index.
    Index(usize),
}

/// A parsed fieldsV1 tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSet {
    /// Whether `.` is present (the node itself is owned).
    pub owns_self: bool,
    /// Owned children.
    pub children: Vec<(PathElement, FieldSet)>,
}

impl FieldSet {
    /// Parses a fieldsV1 value.
    pub(crate) fn parse(value: &Value, manager: &str) -> Result<FieldSet, DiffError> {
        let fail = |message: String| DiffError::FieldSet {
            manager: manager.to_string(),
            message,
        };
        let Value::Object(map) = value else {
            return Err(fail(format!("expected an object, got {value}")));
        };
        let mut set = FieldSet::default();
        for (key, child) in map {
            if key == "." {
                set.owns_self = true;
                continue;
            }
            let (prefix, rest) = key
                .split_at_checked(2)
                .ok_or_else(|| fail(format!("bad key {key:?}")))?;
            let element = match prefix {
                "f:" => PathElement::Field(rest.to_string()),
                "k:" => match serde_json::from_str(rest) {
                    Ok(Value::Object(m)) => PathElement::Key(m),
                    _ => return Err(fail(format!("bad list-map key {key:?}"))),
                },
                "v:" => PathElement::Value(
                    serde_json::from_str(rest)
                        .map_err(|e| fail(format!("bad set value {key:?}: {e}")))?,
                ),
                "i:" => PathElement::Index(
                    rest.parse()
                        .map_err(|_| fail(format!("bad index {key:?}")))?,
                ),
                _ => return Err(fail(format!("unknown key prefix in {key:?}"))),
            };
            set.children
                .push((element, FieldSet::parse(child, manager)?));
        }
        Ok(set)
    }

    /// Whether this node has no owned children.
    fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }
}

/// The parsed field set of every `managedFields` entry of `live` accepted by `select`
/// (called with manager and operation).
pub(crate) fn managed_sets(
    live: &Value,
    select: impl Fn(&str, &str) -> bool,
) -> Result<Vec<FieldSet>, DiffError> {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    let mut sets = Vec::new();
    for entry in entries.into_iter().flatten() {
        let manager = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let operation = entry
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !select(manager, operation) {
            continue;
        }
        if let Some(fields) = entry.get("fieldsV1") {
            sets.push(FieldSet::parse(fields, manager)?);
        }
    }
    Ok(sets)
}

/// Removes from `target` what `set` owns and `desired` does not set (pass `None` to
/// remove everything the set owns). With `drop_items`, a list item the set owns (`.`)
/// and desired lacks is removed whole, as server-side apply does; otherwise only leaves.
pub(crate) fn remove_owned(
    set: &FieldSet,
    desired: Option<&Value>,
    target: &mut Value,
    drop_items: bool,
) {
    for (element, child) in &set.children {
        match element {
            PathElement::Field(name) => {
                let want = desired.and_then(|d| d.get(name)).filter(|v| !v.is_null());
                let Value::Object(map) = target else { continue };
                if !map.contains_key(name) {
                    continue;
                }
                if child.is_leaf() {
                    if want.is_none() {
                        map.remove(name);
                    }
                } else if let Some(next) = map.get_mut(name) {
                    remove_owned(child, want, next, drop_items);
                }
            }
            PathElement::Key(key) => {
                let want = desired
                    .and_then(Value::as_array)
                    .and_then(|d| find_by_key(d, key).and_then(|i| d.get(i)));
                let Value::Array(items) = target else {
                    continue;
                };
                let Some(index) = find_by_key(items, key) else {
                    continue;
                };
                remove_item(child, want, items, index, drop_items);
            }
            PathElement::Index(index) => {
                let want = desired.and_then(|d| d.get(*index));
                let Value::Array(items) = target else {
                    continue;
                };
                if *index < items.len() {
                    remove_item(child, want, items, *index, drop_items);
                }
            }
            PathElement::Value(value) => {
                let wanted = desired
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.contains(value));
                if let (Value::Array(items), false) = (&mut *target, wanted) {
                    items.retain(|item| item != value);
                }
            }
        }
    }
}

fn remove_item(
    child: &FieldSet,
    want: Option<&Value>,
    items: &mut Vec<Value>,
    index: usize,
    drop_items: bool,
) {
    if want.is_none() && (child.is_leaf() || (drop_items && child.owns_self)) {
        items.remove(index);
        return;
    }
    if let Some(item) = items.get_mut(index) {
        remove_owned(child, want, item, drop_items);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> FieldSet {
        FieldSet::parse(&v, "m").unwrap()
    }

    #[test]
    fn parses_all_key_kinds() {
        let s = set(json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}},
            "f:finalizers": {"v:\"a\"": {}},
            "f:args": {"i:0": {}}
        }));
        assert_eq!(s.children.len(), 4);
        let (_, spec) = &s.children[1];
        let (_, containers) = &spec.children[0];
        let (key, item) = &containers.children[0];
        assert_eq!(
            key,
            &PathElement::Key(json!({"name": "web"}).as_object().unwrap().clone())
        );
        assert!(item.owns_self);
        assert_eq!(
            s.children[2].1.children[0].0,
            PathElement::Value(json!("a"))
        );
        assert_eq!(s.children[3].1.children[0].0, PathElement::Index(0));
    }

    #[test]
    fn rejects_malformed_sets() {
        for bad in [
            json!({"x:y": {}}),
            json!({"k:notjson": {}}),
            json!({"i:z": {}}),
            json!([1]),
        ] {
            assert!(FieldSet::parse(&bad, "m").is_err(), "{bad}");
        }
    }

    #[test]
    fn removes_owned_fields_desired_dropped() {
        let s = set(json!({
            "f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}},
            "f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:env": {"k:{\"name\":\"X\"}": {".": {}, "f:name": {}, "f:value": {}}}},
                "k:{\"name\":\"old\"}": {".": {}, "f:name": {}}
            }}
        }));
        let desired =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "web"}]}});
        let mut live = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}, "spec": {"containers": [
            {"name": "web", "env": [{"name": "X", "value": "1"}], "image": "i"}, {"name": "old"}]}});
        remove_owned(&s, Some(&desired), &mut live, true);
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"containers": [
            {"name": "web", "env": [], "image": "i"}]}})
        );
    }

    #[test]
    fn removes_everything_owned_without_desired() {
        let s = set(
            json!({"f:spec": {"f:replicas": {}}, "f:metadata": {"f:finalizers": {"v:\"x\"": {}}}}),
        );
        let mut obj = json!({"spec": {"replicas": 3, "paused": false}, "metadata": {"finalizers": ["x", "y"]}});
        remove_owned(&s, None, &mut obj, false);
        assert_eq!(
            obj,
            json!({"spec": {"paused": false}, "metadata": {"finalizers": ["y"]}})
        );
    }
}
