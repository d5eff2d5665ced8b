//! kubectl-style client-side apply, the pure part: the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation and the three-way JSON
//! merge patch from last-applied, desired and live.

use serde_json::{Map, Value};

/// The annotation holding the configuration of the last client-side apply.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The desired object as client-side apply writes it: with the last-applied annotation
/// set to the object itself (serialised without that annotation), like kubectl.
pub fn with_last_applied(desired: &Value) -> Value {
    let mut clean = desired.clone();
    if let Some(annotations) = clean
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty()
            && let Some(metadata) = clean.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
    }
    let text = clean.to_string();
    let mut out = desired.clone();
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::String(text));
        }
    }
    out
}

/// The last-applied configuration recorded on a live object, if any and parseable.
pub fn last_applied(live: &Value) -> Option<Value> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// kubectl's three-way JSON merge patch: fields in `original` (last applied) that are
/// missing from `modified` (desired) are deleted (`null`); fields of `modified` that
/// differ from `current` (live) are set. Fields only live has (status, defaults, fields
/// of other writers) are kept. Lists are replaced whole. An empty object means
/// "unchanged".
pub fn three_way_merge_patch(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let mut patch = additions(current, modified);
    if let Some(original) = original {
        let deletions = deletions(original, modified);
        merge_into(&mut patch, deletions);
    }
    Value::Object(patch)
}

/// Whether a patch changes nothing.
pub fn is_empty_patch(patch: &Value) -> bool {
    patch.as_object().is_none_or(Map::is_empty)
}

fn additions(current: &Value, modified: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(modified) = modified.as_object() else {
        return out;
    };
    for (key, want) in modified {
        match current.get(key) {
            None => {
                if !want.is_null() {
                    out.insert(key.clone(), want.clone());
                }
            }
            Some(have) if have.is_object() && want.is_object() => {
                let nested = additions(have, want);
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            Some(have) if have != want => {
                out.insert(key.clone(), want.clone());
            }
            Some(_) => {}
        }
    }
    out
}

fn deletions(original: &Value, modified: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(original) = original.as_object() else {
        return out;
    };
    for (key, was) in original {
        match modified.get(key) {
            None => {
                out.insert(key.clone(), Value::Null);
            }
            Some(now) if was.is_object() && now.is_object() => {
                let nested = deletions(was, now);
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            Some(_) => {}
        }
    }
    out
}

fn merge_into(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(t)), Value::Object(s)) => merge_into(t, s),
            (Some(_), _) => {}
            (None, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removed_fields_become_null_and_changed_fields_are_set() {
        let original = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "1"}}});
        let modified = json!({"data": {"a": "9"}, "metadata": {"name": "m"}});
        let current = json!({"data": {"a": "1", "b": "2", "c": "live"},
            "metadata": {"name": "m", "labels": {"x": "1"}, "uid": "u"}, "status": {}});
        let patch = three_way_merge_patch(Some(&original), &modified, &current);
        assert_eq!(
            patch,
            json!({"data": {"a": "9", "b": null}, "metadata": {"labels": null}})
        );
    }

    #[test]
    fn nothing_to_do_is_an_empty_patch() {
        let desired = json!({"data": {"a": "1"}, "spec": {"list": [1, 2]}});
        let live = json!({"data": {"a": "1"}, "spec": {"list": [1, 2], "default": true}});
        let patch = three_way_merge_patch(Some(&desired), &desired, &live);
        assert!(is_empty_patch(&patch));
        let changed = json!({"data": {"a": "1"}, "spec": {"list": [2]}});
        assert_eq!(
            three_way_merge_patch(None, &changed, &live),
            json!({"spec": {"list": [2]}})
        );
    }

    #[test]
    fn last_applied_round_trips_without_itself() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "m", "annotations": {LAST_APPLIED_ANNOTATION: "old"}}});
        let written = with_last_applied(&desired);
        let recorded = last_applied(&written).unwrap();
        assert_eq!(
            recorded,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}})
        );
        let bare = with_last_applied(&json!({"metadata": {"name": "n"}}));
        assert!(last_applied(&bare).is_some());
        assert_eq!(
            with_last_applied(&json!("not an object")),
            json!("not an object")
        );
    }
}
