//! The three patch formats of `PATCH` requests: strategic merge patch
//! (`application/strategic-merge-patch+json`) for built-in kinds, JSON merge patch
//! (RFC 7386) and JSON patch (RFC 6902).
//!
//! Strategic merge follows `k8s.io/apimachinery/pkg/util/strategicpatch` as the API
//! server applies it: maps merge recursively and `null` deletes a key; lists declared as
//! maps merge by their patch merge key (the first key of [`ListKind::Map`]), sets of
//! scalars are unioned, other lists are replaced; the directives `$patch`
//! (`replace`/`delete` on maps and list items), `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` are honoured, and the
//! order of merged list items is the one the real implementation produces (new items
//! first, in patch order, interleaved with the live items by their live order).

use crate::schema::{ListKind, Schema};
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// A strategic merge patch the API server would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The original or the patch is not a JSON object.
    #[error("strategic merge patch needs objects, got {what}")]
    NotAnObject { what: &'static str },
    /// A `$patch` directive other than `replace` or `delete` on a map.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    /// `$patch: merge` on a list item, which the real implementation refuses.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeListDirective,
    /// A key starting with `$` that is no known directive.
    #[error("unknown directive {key} in strategic merge patch")]
    UnknownDirective { key: String },
    /// A list item lacks the list's merge key.
    #[error("map: {item} does not contain declared merge key: {key}")]
    NoMergeKey { item: String, key: String },
    /// Maps in a list that has no merge key.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyForList { field: String },
    /// List items of different JSON types, or lists of lists.
    #[error("list element types are not identical or are lists: {field}")]
    ListElementTypes { field: String },
    /// `$retainKeys` malformed or not covering the patch's keys.
    #[error("doesn't match $retainKeys list or $retainKeys is not a list of keys at {field}")]
    RetainKeys { field: String },
    /// `$deleteFromPrimitiveList/<field>` is not a list.
    #[error("invalid patch format for $deleteFromPrimitiveList/{field}: must be a list")]
    DeleteFromPrimitiveList { field: String },
    /// `$setElementOrder/<field>` malformed or contradicting the patch list.
    #[error("invalid $setElementOrder/{field} list: {reason}")]
    SetElementOrder { field: String, reason: &'static str },
}

/// A JSON patch that cannot be parsed or applied (including a failed `test`).
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    /// The body is not a list of RFC 6902 operations.
    #[error("invalid json patch")]
    Parse(#[source] serde_json::Error),
    /// An operation failed against the document.
    #[error("the json patch could not be applied")]
    Apply(#[source] json_patch::PatchError),
}

/// Whether the API server accepts strategic merge patches for objects of this schema
/// (built-in kinds only; custom resources get 415 Unsupported Media Type).
pub fn supports_strategic(schema: Schema<'_>) -> bool {
    matches!(schema, Schema::Builtin { .. })
}

/// Applies a strategic merge patch to `original`.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: Schema<'_>,
) -> Result<Value, StrategicMergeError> {
    let Value::Object(original) = original else {
        return Err(StrategicMergeError::NotAnObject {
            what: "a non-object original",
        });
    };
    let Value::Object(patch) = patch else {
        return Err(StrategicMergeError::NotAnObject {
            what: "a non-object patch",
        });
    };
    let merger = Merger { schema };
    let mut path = Vec::new();
    merger
        .merge_map(original.clone(), patch, &mut path)
        .map(Value::Object)
}

/// Applies a JSON merge patch (RFC 7386) to `original`.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Applies a JSON patch (RFC 6902) to `original`; a failing `test` operation is an error.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(JsonPatchError::Parse)?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(JsonPatchError::Apply)?;
    Ok(doc)
}

struct Merger<'s> {
    schema: Schema<'s>,
}

/// How a merged list is keyed for ordering and lookups.
#[derive(Clone, Copy)]
enum ItemKey<'k> {
    /// Scalars, compared by value.
    Scalar,
    /// Maps, compared by this field.
    Field(&'k str),
}

impl ItemKey<'_> {
    fn same(self, a: &Value, b: &Value) -> bool {
        match self {
            ItemKey::Scalar => a == b,
            ItemKey::Field(k) => match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    fn index(self, list: &[Value], item: &Value) -> Option<usize> {
        list.iter().position(|x| self.same(x, item))
    }
}

fn field_name(path: &[&str]) -> String {
    path.join(".")
}

impl<'s> Merger<'s> {
    fn merge_map<'p>(
        &self,
        original: Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &mut Vec<&'p str>,
    ) -> Result<Map<String, Value>, StrategicMergeError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                // Directives and nulls nested in the replacement are resolved, as decoding
                // into the typed object would drop them.
                Some("replace") => self.merge_fields(Map::new(), patch, path),
                Some("delete") => Ok(Map::new()),
                _ => Err(StrategicMergeError::BadPatchType {
                    directive: directive.to_string(),
                    map: Value::Object(patch.clone()).to_string(),
                }),
            };
        }
        self.merge_fields(original, patch, path)
    }

    /// Merges the fields of `patch` into `original`, ignoring a `$patch` directive.
    fn merge_fields<'p>(
        &self,
        mut original: Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &mut Vec<&'p str>,
    ) -> Result<Map<String, Value>, StrategicMergeError> {
        self.apply_retain_keys(&mut original, patch, path)?;
        let ordered = self.apply_set_element_orders(&mut original, patch, path)?;
        for (key, patch_value) in patch {
            if key == DIRECTIVE
                || key == RETAIN_KEYS
                || key.starts_with(SET_ORDER)
                || ordered.contains(&key.as_str())
            {
                continue;
            }
            if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
                delete_from_primitive_list(&mut original, field, patch_value)?;
                continue;
            }
            if key.starts_with('$') {
                return Err(StrategicMergeError::UnknownDirective { key: key.clone() });
            }
            if patch_value.is_null() {
                original.shift_remove(key);
                continue;
            }
            path.push(key);
            let existing = original.get_mut(key).map(Value::take);
            let merged = match (existing, patch_value) {
                (Some(Value::Object(o)), Value::Object(p)) => {
                    if self.schema.is_atomic_map(path) {
                        self.clean_map(p, path).map(Value::Object)
                    } else {
                        self.merge_map(o, p, path).map(Value::Object)
                    }
                }
                (Some(Value::Array(o)), Value::Array(p)) => {
                    self.merge_list(o, p, path).map(Value::Array)
                }
                (_, p) => self.clean(p, path),
            };
            path.pop();
            original.insert(key.clone(), merged?);
        }
        Ok(original)
    }

    /// A patch value for a field the original lacks: merged into an empty value so that
    /// directives are resolved and nulls dropped.
    fn clean<'p>(
        &self,
        value: &'p Value,
        path: &mut Vec<&'p str>,
    ) -> Result<Value, StrategicMergeError> {
        match value {
            Value::Object(m) => self.clean_map(m, path).map(Value::Object),
            Value::Array(items) => self.merge_list(Vec::new(), items, path).map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    fn clean_map<'p>(
        &self,
        map: &'p Map<String, Value>,
        path: &mut Vec<&'p str>,
    ) -> Result<Map<String, Value>, StrategicMergeError> {
        self.merge_map(Map::new(), map, path)
    }

    fn apply_retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &[&str],
    ) -> Result<(), StrategicMergeError> {
        let Some(retain) = patch.get(RETAIN_KEYS) else {
            return Ok(());
        };
        let err = || StrategicMergeError::RetainKeys {
            field: field_name(path),
        };
        let keys: Vec<&str> = retain
            .as_array()
            .ok_or_else(err)?
            .iter()
            .map(|k| k.as_str().ok_or_else(err))
            .collect::<Result<_, _>>()?;
        let covered = patch.iter().all(|(k, v)| {
            v.is_null()
                || k == RETAIN_KEYS
                || k.starts_with(DELETE_PRIMITIVE)
                || k.starts_with(SET_ORDER)
                || keys.contains(&k.as_str())
        });
        if !covered {
            return Err(err());
        }
        original.retain(|k, _| keys.contains(&k.as_str()));
        Ok(())
    }

    /// Processes every `$setElementOrder/<field>` of `patch`, merging that field's patch
    /// list too; returns the fields handled so the main loop skips them.
    fn apply_set_element_orders<'p>(
        &self,
        original: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &mut Vec<&'p str>,
    ) -> Result<Vec<&'p str>, StrategicMergeError> {
        let mut handled = Vec::new();
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ORDER) else {
                continue;
            };
            let err = |reason| StrategicMergeError::SetElementOrder {
                field: field.to_owned(),
                reason,
            };
            let order = order.as_array().ok_or_else(|| err("not a list"))?;
            let original_list = match original.get(field) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(_) => return Err(err("the field is not a list")),
            };
            let patch_list = match patch.get(field) {
                None => None,
                Some(Value::Array(a)) => Some(a),
                Some(_) => return Err(err("the field is not a list in the patch")),
            };
            handled.push(field);
            path.push(field);
            let kind = self.schema.list_kind(path);
            let result = self.order_field(original_list, patch_list, order, kind, path);
            path.pop();
            if let Some(merged) = result? {
                original.insert(field.to_owned(), Value::Array(merged));
            }
        }
        Ok(handled)
    }

    fn order_field<'p>(
        &self,
        original: Option<Vec<Value>>,
        patch: Option<&'p Vec<Value>>,
        order: &[Value],
        kind: ListKind,
        path: &mut Vec<&'p str>,
    ) -> Result<Option<Vec<Value>>, StrategicMergeError> {
        let field = path.last().copied().unwrap_or_default().to_owned();
        let key = match kind {
            ListKind::Map(keys) => ItemKey::Field(keys.first().copied().unwrap_or("name")),
            ListKind::Set => ItemKey::Scalar,
            ListKind::Atomic => {
                return match patch {
                    Some(p) => self
                        .merge_list(original.unwrap_or_default(), p, path)
                        .map(Some),
                    None => Ok(original),
                };
            }
        };
        if let Some(p) = patch {
            validate_order(p, order, key).map_err(|reason| {
                StrategicMergeError::SetElementOrder {
                    field: field.clone(),
                    reason,
                }
            })?;
        }
        let original_items = original.clone().unwrap_or_default();
        let merged = match (original, patch) {
            (Some(o), None) => o,
            (None, Some(p)) => self.merge_list(Vec::new(), p, path)?,
            (Some(o), Some(p)) => self.merge_list(o, p, path)?,
            (None, None) => return Ok(None),
        };
        let (in_order, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| key.index(order, item).is_some());
        Ok(Some(normalize_order(
            in_order,
            server_only,
            order,
            &original_items,
            key,
        )))
    }

    fn merge_list<'p>(
        &self,
        original: Vec<Value>,
        patch: &'p [Value],
        path: &mut Vec<&'p str>,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        let kind = self.schema.list_kind(path);
        if kind == ListKind::Atomic {
            return Ok(patch.to_vec());
        }
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let field = field_name(path);
        let element_kind = element_kind(&original, patch).ok_or_else(|| {
            StrategicMergeError::ListElementTypes {
                field: field.clone(),
            }
        })?;
        if element_kind != ElementKind::Map {
            let mut merged = Vec::with_capacity(original.len() + patch.len());
            for item in original.iter().chain(patch) {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            let (in_patch, server_only): (Vec<Value>, Vec<Value>) =
                merged.into_iter().partition(|item| patch.contains(item));
            return Ok(normalize_order(
                in_patch,
                server_only,
                patch,
                &original,
                ItemKey::Scalar,
            ));
        }
        let ListKind::Map(keys) = kind else {
            return Err(StrategicMergeError::NoMergeKeyForList { field });
        };
        let merge_key = keys.first().copied().unwrap_or("name");
        let key = ItemKey::Field(merge_key);
        let (original, plain) = special_elements(original, patch, merge_key)?;
        let mut merged = original.clone();
        for &item in &plain {
            let Value::Object(item_map) = item else {
                return Err(StrategicMergeError::ListElementTypes { field });
            };
            if !item_map.contains_key(merge_key) {
                return Err(no_merge_key(item, merge_key));
            }
            match key.index(&merged, item) {
                Some(i) => {
                    let Value::Object(existing) = std::mem::take(&mut merged[i]) else {
                        return Err(StrategicMergeError::ListElementTypes { field });
                    };
                    merged[i] = Value::Object(self.merge_map(existing, item_map, path)?);
                }
                None => merged.push(Value::Object(self.clean_map(item_map, path)?)),
            }
        }
        let plain_values: Vec<Value> = plain.iter().map(|v| (*v).clone()).collect();
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| key.index(&plain_values, item).is_some());
        Ok(normalize_order(
            in_patch,
            server_only,
            &plain_values,
            &original,
            key,
        ))
    }
}

fn no_merge_key(item: &Value, key: &str) -> StrategicMergeError {
    StrategicMergeError::NoMergeKey {
        item: item.to_string(),
        key: key.to_owned(),
    }
}

/// Handles list items carrying `$patch`: `delete` removes the matching live items,
/// `replace` makes the remaining patch items the whole list. Returns the updated original
/// and the plain patch items.
fn special_elements<'p>(
    mut original: Vec<Value>,
    patch: &'p [Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<&'p Value>), StrategicMergeError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = item
                    .get(merge_key)
                    .ok_or_else(|| no_merge_key(item, merge_key))?;
                original.retain(|o| o.get(merge_key) != Some(value));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(StrategicMergeError::MergeListDirective),
            _ => {
                return Err(StrategicMergeError::BadPatchType {
                    directive: directive.to_string(),
                    map: item.to_string(),
                });
            }
        }
    }
    if replace {
        let replaced = plain.into_iter().cloned().collect();
        return Ok((replaced, Vec::new()));
    }
    Ok((original, plain))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

/// The common kind of all items, or `None` when they differ or are lists.
fn element_kind(a: &[Value], b: &[Value]) -> Option<ElementKind> {
    let mut kind = None;
    for v in a.iter().chain(b) {
        let k = match v {
            Value::Object(_) => ElementKind::Map,
            Value::String(_) => ElementKind::String,
            Value::Number(_) => ElementKind::Number,
            Value::Bool(_) => ElementKind::Bool,
            Value::Null => ElementKind::Null,
            Value::Array(_) => return None,
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => return None,
            Some(_) => {}
        }
    }
    kind
}

fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    to_delete: &Value,
) -> Result<(), StrategicMergeError> {
    let to_delete =
        to_delete
            .as_array()
            .ok_or_else(|| StrategicMergeError::DeleteFromPrimitiveList {
                field: field.to_owned(),
            })?;
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|v| !to_delete.contains(v));
    }
    Ok(())
}

/// Checks that the patch's plain items appear in `$setElementOrder` in the same
/// relative order.
fn validate_order(patch: &[Value], order: &[Value], key: ItemKey<'_>) -> Result<(), &'static str> {
    let plain: Vec<&Value> = patch
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .collect();
    let (mut p, mut o) = (0, 0);
    while p < plain.len() && o < order.len() {
        if let ItemKey::Field(k) = key
            && (plain[p].get(k).is_none() || order[o].get(k).is_none())
        {
            return Err("an item lacks the merge key");
        }
        if key.same(plain[p], &order[o]) {
            p += 1;
        }
        o += 1;
    }
    if p < plain.len() {
        return Err("the order in the patch list doesn't match the $setElementOrder list");
    }
    Ok(())
}

/// Sorts patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them the way `strategicpatch.mergeSortedSlice` does.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: ItemKey<'_>,
) -> Vec<Value> {
    patch_items.sort_by_key(|item| key.index(patch_order, item).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| key.index(server_order, item).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (key.index(server_order, l), key.index(server_order, r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const DEPLOY: Schema<'static> = Schema::Builtin {
        group: "apps",
        kind: "Deployment",
    };

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}})
    }

    fn containers(v: &Value) -> &Value {
        &v["spec"]["template"]["spec"]["containers"]
    }

    fn patch_containers(c: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": c}}}})
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3, "paused": null}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn keyed_lists_merge_by_name_and_new_items_go_first() {
        let orig =
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let patch =
            patch_containers(json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]));
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(
            containers(&out),
            &json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}])
        );
        // An item unknown to the live list is placed before the live items.
        let patch = patch_containers(json!([{"name": "z", "image": "z"}]));
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        let names: Vec<_> = containers(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("z"), json!("a"), json!("b")]);
    }

    #[test]
    fn nested_keyed_lists_use_the_path() {
        let orig = deployment(
            json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "X", "value": "1"}], "args": ["--a"]}]),
        );
        let patch = patch_containers(
            json!([{"name": "a", "ports": [{"containerPort": 80, "name": "web"}],
            "env": [{"name": "Y", "value": "2"}], "args": ["--b"]}]),
        );
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        let c = &containers(&out)[0];
        assert_eq!(c["ports"], json!([{"containerPort": 80, "name": "web"}]));
        assert_eq!(
            c["env"],
            json!([{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}])
        );
        assert_eq!(c["args"], json!(["--b"]), "args is atomic");
    }

    #[test]
    fn list_item_directives() {
        let orig = deployment(json!([{"name": "a"}, {"name": "b"}]));
        let out = strategic_merge(
            &orig,
            &patch_containers(json!([{"name": "a", "$patch": "delete"}])),
            DEPLOY,
        )
        .unwrap();
        assert_eq!(containers(&out), &json!([{"name": "b"}]));
        let patch = patch_containers(json!([{"name": "c", "image": "x"}, {"$patch": "replace"}]));
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(containers(&out), &json!([{"name": "c", "image": "x"}]));
        let err = strategic_merge(
            &orig,
            &patch_containers(json!([{"name": "a", "$patch": "merge"}])),
            DEPLOY,
        );
        assert_eq!(err, Err(StrategicMergeError::MergeListDirective));
        let err = strategic_merge(&orig, &patch_containers(json!([{"image": "x"}])), DEPLOY);
        assert!(matches!(err, Err(StrategicMergeError::NoMergeKey { .. })));
    }

    #[test]
    fn map_directives() {
        let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
        let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
        assert_eq!(
            strategic_merge(&orig, &patch, DEPLOY).unwrap(),
            json!({"spec": {"strategy": {}}})
        );
        let patch = json!({"spec": {"strategy": {"$patch": "bogus"}}});
        assert!(matches!(
            strategic_merge(&orig, &patch, DEPLOY),
            Err(StrategicMergeError::BadPatchType { .. })
        ));
        let patch = json!({"spec": {"$bogus": 1}});
        assert!(matches!(
            strategic_merge(&orig, &patch, DEPLOY),
            Err(StrategicMergeError::UnknownDirective { .. })
        ));
    }

    #[test]
    fn retain_keys_clears_other_fields() {
        let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
        let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
        assert!(matches!(
            strategic_merge(&orig, &bad, DEPLOY),
            Err(StrategicMergeError::RetainKeys { .. })
        ));
    }

    #[test]
    fn primitive_sets_and_delete_from_primitive_list() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = strategic_merge(
            &orig,
            &json!({"metadata": {"finalizers": ["b", "c"]}}),
            DEPLOY,
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order_orders_merged_items() {
        let orig = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "x"}]}}}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(
            containers(&out),
            &json!([{"name": "c"}, {"name": "b", "image": "x"}, {"name": "a"}])
        );
        let bad = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]}}}});
        assert!(matches!(
            strategic_merge(&orig, &bad, DEPLOY),
            Err(StrategicMergeError::SetElementOrder { .. })
        ));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let schema = Schema::Builtin {
            group: "",
            kind: "Service",
        };
        let orig = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
        let out = strategic_merge(&orig, &patch, schema).unwrap();
        assert_eq!(
            out["spec"]["ports"][1],
            json!({"port": 443, "name": "https", "targetPort": 8443})
        );
        assert!(supports_strategic(schema));
        assert!(!supports_strategic(Schema::Deduced));
    }

    #[test]
    fn new_fields_are_cleaned_of_nulls_and_directives() {
        let orig = json!({"spec": {}});
        let patch = json!({"spec": {"template": {"metadata": {"labels": {"a": "1", "b": null}},
            "spec": {"containers": [{"name": "x", "$patch": "delete"}, {"name": "y"}]}}}});
        let out = strategic_merge(&orig, &patch, DEPLOY).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "y"}]}}}})
        );
    }

    #[test]
    fn json_merge_and_json_patch() {
        let orig = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        assert_eq!(
            json_merge(&orig, &json!({"a": {"b": null, "c": [3]}})),
            json!({"a": {"c": [3]}, "d": 1})
        );
        let ops = json!([{"op": "replace", "path": "/d", "value": 2}, {"op": "add", "path": "/a/c/-", "value": 3}]);
        assert_eq!(
            json_patch(&orig, &ops).unwrap(),
            json!({"a": {"b": 1, "c": [1, 2, 3]}, "d": 2})
        );
        let failing = json!([{"op": "test", "path": "/d", "value": 5}]);
        assert!(matches!(
            json_patch(&orig, &failing),
            Err(JsonPatchError::Apply(_))
        ));
        assert!(matches!(
            json_patch(&orig, &json!({"op": "add"})),
            Err(JsonPatchError::Parse(_))
        ));
    }

    /// An RFC 7386 patch turning `a` into `b`.
    fn merge_diff(a: &Value, b: &Value) -> Value {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                let mut out = Map::new();
                for (k, v) in b {
                    match a.get(k) {
                        Some(old) if old == v => {}
                        Some(old) => {
                            out.insert(k.clone(), merge_diff(old, v));
                        }
                        None => {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
                for k in a.keys().filter(|k| !b.contains_key(*k)) {
                    out.insert(k.clone(), Value::Null);
                }
                Value::Object(out)
            }
            _ => b.clone(),
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-z]{1,4}", arb_json(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    fn arb_deployment() -> impl Strategy<Value = Value> {
        let container = (
            "[a-z]{1,5}",
            prop::collection::btree_set("[A-Z]{1,3}", 0..3),
        );
        prop::collection::btree_map("[a-z]{1,5}", container, 0..4).prop_map(|cs| {
            let list: Vec<Value> = cs
                .into_iter()
                .map(|(name, (image, env))| {
                    let env: Vec<Value> = env
                        .into_iter()
                        .map(|e| json!({"name": e, "value": "v"}))
                        .collect();
                    json!({"name": name, "image": image, "env": env})
                })
                .collect();
            deployment(Value::Array(list))
        })
    }

    proptest! {
        #[test]
        fn strategic_merge_with_itself_is_identity(d in arb_deployment()) {
            prop_assert_eq!(strategic_merge(&d, &d, DEPLOY).unwrap(), d.clone());
            prop_assert_eq!(strategic_merge(&d, &json!({}), DEPLOY).unwrap(), d);
        }

        #[test]
        fn json_merge_of_a_diff_reaches_the_target(a in arb_object(), b in arb_object()) {
            let diff = merge_diff(&a, &b);
            prop_assert_eq!(json_merge(&a, &diff), b);
        }

        #[test]
        fn strategic_merge_of_untyped_objects_equals_json_merge(a in arb_object(), p in arb_object()) {
            // Without list semantics (Deduced schema), strategic merge patch is a JSON
            // merge patch (the generated values hold no nulls or directives).
            prop_assert_eq!(strategic_merge(&a, &p, Schema::Deduced).unwrap(), json_merge(&a, &p));
        }
    }
}
