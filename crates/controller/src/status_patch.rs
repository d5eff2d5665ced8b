//! Status writing helpers: the JSON merge patch between two documents, condition
//! bookkeeping (lastTransitionTime kept while a condition stays), and the "did anything
//! but timestamps change" test that keeps status writes to real changes.

use keelson_model::application_status::ApplicationCondition;
use serde_json::{Map, Value};

/// The RFC 7386 merge patch turning `old` into `new`, or `None` when they are equal.
/// Objects are merged key by key (removed keys become `null`); anything else is replaced.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(p) = merge_patch(ov, nv) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        // A null inside `new` would mean "delete" in a merge patch: objects holding
        // nulls are not produced by our serializers, so replacing is exact.
        _ => Some(new.clone()),
    }
}

/// Merges freshly evaluated conditions into the previous list: conditions of types in
/// `evaluated` are replaced by `fresh` (keeping the previous lastTransitionTime when the
/// same type and message were already there); other types are kept as they were.
pub fn merge_conditions(
    previous: &[ApplicationCondition],
    fresh: Vec<ApplicationCondition>,
    evaluated: impl Fn(&str) -> bool,
    now: &str,
) -> Vec<ApplicationCondition> {
    let mut out: Vec<ApplicationCondition> = previous
        .iter()
        .filter(|c| !evaluated(&c.type_))
        .cloned()
        .collect();
    for mut c in fresh {
        let before = previous
            .iter()
            .find(|p| p.type_ == c.type_ && p.message == c.message);
        c.last_transition_time = before
            .and_then(|p| p.last_transition_time.clone())
            .or_else(|| Some(now.to_owned()));
        if !out
            .iter()
            .any(|o| o.type_ == c.type_ && o.message == c.message)
        {
            out.push(c);
        }
    }
    out
}

/// Removes the fields that change on every reconcile (`reconciledAt`, `observedAt`) so
/// two statuses can be compared for real changes.
pub fn without_timestamps(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("reconciledAt");
        o.remove("observedAt");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_changes_and_nulls_removals() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        let new = json!({"a": 1, "b": {"c": 5}, "e": [1], "f": "x"});
        let patch = merge_patch(&old, &new);
        assert_eq!(
            patch,
            Some(json!({"b": {"c": 5, "d": null}, "e": [1], "f": "x"}))
        );
        assert_eq!(merge_patch(&old, &old), None);
    }

    #[test]
    fn applying_the_patch_gives_new() {
        let old = json!({"sync": {"status": "OutOfSync", "revision": "a"}, "conditions": [{"type": "X"}]});
        let new = json!({"sync": {"status": "Synced", "revision": "b"}});
        let patch = merge_patch(&old, &new).unwrap_or_default();
        let mut doc = old.clone();
        json_patch::merge(&mut doc, &patch);
        assert_eq!(doc, new);
    }

    #[test]
    fn conditions_keep_transition_time() {
        let prev = vec![
            ApplicationCondition {
                type_: "ComparisonError".into(),
                message: "m".into(),
                last_transition_time: Some("t0".into()),
            },
            ApplicationCondition {
                type_: "SyncError".into(),
                message: "s".into(),
                last_transition_time: Some("t0".into()),
            },
        ];
        let fresh = vec![
            ApplicationCondition {
                type_: "ComparisonError".into(),
                message: "m".into(),
                last_transition_time: None,
            },
            ApplicationCondition {
                type_: "SharedResourceWarning".into(),
                message: "w".into(),
                last_transition_time: None,
            },
        ];
        let out = merge_conditions(&prev, fresh, |t| t != "SyncError", "t1");
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].type_, "SyncError");
        assert_eq!(out[1].last_transition_time.as_deref(), Some("t0"));
        assert_eq!(out[2].last_transition_time.as_deref(), Some("t1"));
    }
}
